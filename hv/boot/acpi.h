// ACPI tables for the guest (RSDP, XSDT, FADT + FACS, DSDT, MADT), written into the
// reserved area at 0xe0000. They tell a Linux guest its CPUs and interrupt routing
// (MADT, _PRT), where the PCI root bridge is (DSDT) and how to power off (FADT PM1
// control + \_S5). Returns the RSDP's guest address.
#pragma once

#include <cstdint>
#include <vector>

#include "hv/memory.h"

namespace arche::hv {

struct AcpiLayout {
  unsigned cpus = 1;
  std::vector<unsigned> pci_slots;  // slots with a device (INTA# routed to GSI 16 + (slot-1) % 8)
};

uint64_t write_acpi_tables(const GuestMemory& memory, const AcpiLayout& layout);

}  // namespace arche::hv
