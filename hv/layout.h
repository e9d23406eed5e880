// The guest-physical memory map of an arche VM. One place, so the boot loaders,
// the ACPI tables, the e820 map and the docs (docs/hv.md) agree.
//
//   0x0000_0000  real-mode IVT/BDA (left zero)
//   0x0000_0500  GDT the loaders set up
//   0x0000_6000  hvm_start_info (PVH) + its memory map
//   0x0000_7000  Linux zero page (boot_params)
//   0x0000_9000  boot page tables: PML4, PDPT, 4 PDs (identity map of 0-4 GiB, 2 MiB pages)
//   0x0002_0000  kernel command line (up to 64 KiB)
//   0x0009_fc00  ---- reserved (EBDA) up to 1 MiB; ACPI tables at 0xe0000
//   0x0010_0000  kernel (bzImage protected-mode part, or PVH ELF segments)
//   ...          RAM up to min(memory, 3 GiB); initrd at the top of low RAM
//   0xc000_0000  PCI hole: BARs from here, IOAPIC 0xfec00000, LAPIC 0xfee00000
//   0x1_0000_0000 RAM above 3 GiB continues here
#pragma once

#include <cstdint>

namespace arche::hv::layout {

inline constexpr uint64_t gdt = 0x500;
inline constexpr uint64_t pvh_start_info = 0x6000;
inline constexpr uint64_t pvh_memmap = 0x6100;       // up to 64 entries of 24 bytes
inline constexpr uint64_t pvh_modlist = 0x6800;
inline constexpr uint64_t zero_page = 0x7000;
inline constexpr uint64_t pml4 = 0x9000;
inline constexpr uint64_t pdpt = 0xa000;
inline constexpr uint64_t pd = 0xb000;              // 4 pages: 0xb000 - 0xefff
inline constexpr uint64_t cmdline = 0x20000;
inline constexpr uint64_t cmdline_max = 0x10000;
inline constexpr uint64_t ebda = 0x9fc00;
inline constexpr uint64_t acpi_tables = 0xe0000;    // RSDP first (found by legacy scans too)
inline constexpr uint64_t acpi_tables_end = 0x100000;
inline constexpr uint64_t high_memory = 0x100000;   // 1 MiB: kernels load here
inline constexpr uint64_t pci_hole_start = 0xc0000000;
inline constexpr uint64_t pci_mmio_start = 0xc0000000;  // BARs are assigned from here
inline constexpr uint64_t pci_mmio_end = 0xfec00000;
inline constexpr uint64_t ioapic = 0xfec00000;
inline constexpr uint64_t lapic = 0xfee00000;
inline constexpr uint64_t tss_addr = 0xfffbd000;    // KVM_SET_TSS_ADDR (3 pages, Intel)
inline constexpr uint64_t identity_map_addr = 0xfffbc000;
inline constexpr uint64_t four_gib = 0x100000000;

// I/O ports.
inline constexpr uint16_t com1 = 0x3f8;
inline constexpr unsigned com1_irq = 4;
inline constexpr uint16_t i8042_data = 0x60;
inline constexpr uint16_t i8042_command = 0x64;
inline constexpr uint16_t cmos = 0x70;
inline constexpr uint16_t exit_port = 0x501;        // same port as QEMU's isa-debug-exit
inline constexpr uint16_t pm1_event = 0x600;        // ACPI PM1a event block (4 bytes)
inline constexpr uint16_t pm1_control = 0x604;      // ACPI PM1a control block (2 bytes)
inline constexpr unsigned sci_irq = 9;
inline constexpr uint16_t pci_config_address = 0xcf8;
inline constexpr uint16_t pci_config_data = 0xcfc;
// PCI INTx: slot s uses GSI pci_gsi_base + (s - 1) % 8 (IOAPIC pins 16-23).
inline constexpr unsigned pci_gsi_base = 16;

}  // namespace arche::hv::layout
