#include "hv/boot/acpi.h"

#include <cstring>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "hv/layout.h"

namespace arche::hv {

namespace {

uint8_t checksum(const uint8_t* data, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return static_cast<uint8_t>(-sum);
}

// Standard description header; length and checksum are fixed up by finish().
ByteWriter table_header(const char* signature, uint8_t revision) {
  ByteWriter w;
  w.string(std::string_view(signature, 4));
  w.le32(0);  // length
  w.u8(revision);
  w.u8(0);  // checksum
  w.string("ARCHE ");
  w.string("ARCHEVM ");
  w.le32(1);
  w.string("ARCH");
  w.le32(1);
  return w;
}

std::vector<uint8_t> finish(ByteWriter& w) {
  std::vector<uint8_t> t = w.take();
  uint32_t length = static_cast<uint32_t>(t.size());
  std::memcpy(&t[4], &length, 4);
  t[9] = checksum(t.data(), t.size());
  return t;
}

// Generic address structure (system I/O space).
void gas_io(ByteWriter& w, uint8_t bit_width, uint8_t access_size, uint64_t port) {
  w.u8(1);
  w.u8(bit_width);
  w.u8(0);
  w.u8(access_size);
  w.le64(port);
}

// ---- a very small AML encoder -------------------------------------------------

// PkgLength (ACPI 20.2.4) for a body of `body` bytes, counting its own bytes.
std::vector<uint8_t> pkg_length(size_t body) {
  if (body + 1 < 64) return {static_cast<uint8_t>(body + 1)};
  for (size_t extra = 1; extra <= 3; ++extra) {
    size_t total = body + 1 + extra;
    if (total < (size_t(1) << (4 + 8 * extra))) {
      std::vector<uint8_t> out{static_cast<uint8_t>((extra << 6) | (total & 0xf))};
      for (size_t i = 0; i < extra; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
      return out;
    }
  }
  fail(ErrorCategory::internal, "acpi: AML package too large");
}

using Aml = std::vector<uint8_t>;

Aml cat(std::initializer_list<Aml> parts) {
  Aml out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Aml name_seg(const char* four) { return Aml(four, four + 4); }

Aml integer(uint64_t v) {
  if (v == 0) return {0x00};
  if (v == 1) return {0x01};
  if (v <= 0xff) return {0x0a, static_cast<uint8_t>(v)};
  if (v <= 0xffff) return {0x0b, static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
  Aml out{0x0c};
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

Aml dword(uint32_t v) {
  Aml out{0x0c};
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

Aml name(const char* four, const Aml& value) { return cat({{0x08}, name_seg(four), value}); }

Aml package(const std::vector<Aml>& elements) {
  Aml body{static_cast<uint8_t>(elements.size())};
  for (const auto& e : elements) body.insert(body.end(), e.begin(), e.end());
  return cat({{0x12}, pkg_length(body.size()), body});
}

Aml buffer(const Aml& bytes) {
  Aml body = cat({integer(bytes.size()), bytes});
  return cat({{0x11}, pkg_length(body.size()), body});
}

Aml scope(const char* four, const Aml& terms) {
  Aml body = cat({name_seg(four), terms});
  return cat({{0x10}, pkg_length(body.size()), body});
}

Aml device(const char* four, const Aml& terms) {
  Aml body = cat({name_seg(four), terms});
  return cat({{0x5b, 0x82}, pkg_length(body.size()), body});
}

// Resource descriptors for the root bridge's _CRS.
Aml word_address(uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max) {
  Aml d{0x88, 0x0d, 0x00, type, 0x0c, type_flags};
  auto put16 = [&](uint16_t v) { d.push_back(static_cast<uint8_t>(v)), d.push_back(static_cast<uint8_t>(v >> 8)); };
  put16(0), put16(min), put16(max), put16(0), put16(static_cast<uint16_t>(max - min + 1));
  return d;
}

Aml dword_memory(uint32_t min, uint32_t max) {
  Aml d{0x87, 0x17, 0x00, 0x00, 0x0c, 0x01};
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) d.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put32(0), put32(min), put32(max), put32(0), put32(max - min + 1);
  return d;
}

Aml io_port(uint16_t base, uint8_t length) {
  return {0x47, 0x01, static_cast<uint8_t>(base), static_cast<uint8_t>(base >> 8), static_cast<uint8_t>(base),
          static_cast<uint8_t>(base >> 8), 0x01, length};
}

Aml dsdt_body(const AcpiLayout& l) {
  Aml crs = cat({word_address(2, 0, 0, 0),                      // bus 0
                 io_port(layout::pci_config_address, 8),          // config mechanism #1
                 word_address(1, 3, 0x0000, 0x0cf7),              // I/O below the config ports
                 word_address(1, 3, 0x0d00, 0xffff),              // and above
                 dword_memory(static_cast<uint32_t>(layout::pci_mmio_start), static_cast<uint32_t>(layout::pci_mmio_end - 1)),
                 {0x79, 0x00}});
  std::vector<Aml> prt;
  for (unsigned slot : l.pci_slots)
    prt.push_back(package({dword((slot << 16) | 0xffff), integer(0), integer(0),
                           integer(layout::pci_gsi_base + (slot - 1) % 8)}));
  Aml pci0 = device("PCI0", cat({name("_HID", dword(0x030ad041)),  // EISAID("PNP0A03")
                                 name("_UID", integer(0)), name("_BBN", integer(0)), name("_SEG", integer(0)),
                                 name("_CRS", buffer(crs)), name("_PRT", package(prt))}));
  Aml com1 = device("COM1", cat({name("_HID", dword(0x0105d041)),  // EISAID("PNP0501")
                                 name("_UID", integer(1)),
                                 name("_CRS", buffer(cat({io_port(layout::com1, 8),
                                                          {0x22, static_cast<uint8_t>(1 << layout::com1_irq), 0x00},
                                                          {0x79, 0x00}})))}));
  // \_S5: SLP_TYPa = 5 (what the PM1 control register turns into power-off).
  Aml s5 = name("_S5_", package({integer(5), integer(0), integer(0), integer(0)}));
  return cat({scope("_SB_", cat({pci0, com1})), s5});
}

}  // namespace

uint64_t write_acpi_tables(const GuestMemory& memory, const AcpiLayout& l) {
  // Placement: RSDP at the start (16-byte aligned, inside the BIOS scan area), then
  // every table 64-byte aligned (FACS must be).
  uint64_t next = layout::acpi_tables + 64;
  auto place = [&](const std::vector<uint8_t>& t) {
    uint64_t at = next;
    if (at + t.size() > layout::acpi_tables_end) fail(ErrorCategory::internal, "acpi: tables do not fit");
    memory.write(at, t);
    next = (at + t.size() + 63) & ~uint64_t(63);
    return at;
  };

  ByteWriter dsdt = table_header("DSDT", 2);
  dsdt.bytes(dsdt_body(l));
  uint64_t dsdt_at = place(finish(dsdt));

  ByteWriter facs;
  facs.string("FACS");
  facs.le32(64);
  facs.zeros(56);
  uint64_t facs_at = place(facs.take());

  ByteWriter fadt = table_header("FACP", 6);
  fadt.le32(static_cast<uint32_t>(facs_at));  // 36 FIRMWARE_CTRL
  fadt.le32(static_cast<uint32_t>(dsdt_at));  // 40 DSDT
  fadt.u8(0);                                 // 44 reserved
  fadt.u8(0);                                 // 45 preferred PM profile: unspecified
  fadt.le16(layout::sci_irq);                 // 46 SCI_INT
  fadt.le32(0);                               // 48 SMI_CMD: none, always in ACPI mode
  fadt.u8(0), fadt.u8(0), fadt.u8(0), fadt.u8(0);  // 52 ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
  fadt.le32(layout::pm1_event);               // 56 PM1a_EVT_BLK
  fadt.le32(0);                               // 60 PM1b_EVT_BLK
  fadt.le32(layout::pm1_control);             // 64 PM1a_CNT_BLK
  fadt.le32(0), fadt.le32(0), fadt.le32(0);   // 68 PM1b_CNT, 72 PM2_CNT, 76 PM_TMR
  fadt.le32(0), fadt.le32(0);                 // 80 GPE0, 84 GPE1
  fadt.u8(4), fadt.u8(2), fadt.u8(0), fadt.u8(0);  // 88 PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN
  fadt.u8(0), fadt.u8(0), fadt.u8(0), fadt.u8(0);  // 92 GPE0_LEN, GPE1_LEN, GPE1_BASE, CST_CNT
  fadt.le16(101), fadt.le16(1001);            // 96 P_LVL2_LAT, P_LVL3_LAT (C2/C3 not supported)
  fadt.le16(0), fadt.le16(0);                 // 100 FLUSH_SIZE, FLUSH_STRIDE
  fadt.u8(0), fadt.u8(0), fadt.u8(0), fadt.u8(0), fadt.u8(0x32);  // 104 duty, alarms, CENTURY
  fadt.le16(1 << 2);                          // 109 IAPC_BOOT_ARCH: no VGA
  fadt.u8(0);                                 // 111 reserved
  // 112 flags: WBINVD, PWR_BUTTON and SLP_BUTTON as control methods (none),
  // RESET_REG_SUP.
  fadt.le32((1 << 0) | (1 << 4) | (1 << 5) | (1 << 10));
  gas_io(fadt, 8, 1, layout::i8042_command);  // 116 RESET_REG: i8042 command port
  fadt.u8(0xfe);                              // 128 RESET_VALUE: pulse reset
  fadt.le16(0);                               // 129 ARM_BOOT_ARCH
  fadt.u8(3);                                 // 131 FADT minor version
  fadt.le64(facs_at);                         // 132 X_FIRMWARE_CTRL
  fadt.le64(dsdt_at);                         // 140 X_DSDT
  gas_io(fadt, 32, 2, layout::pm1_event);     // 148 X_PM1a_EVT_BLK
  fadt.zeros(12);                             // 160 X_PM1b_EVT_BLK
  gas_io(fadt, 16, 2, layout::pm1_control);   // 172 X_PM1a_CNT_BLK
  fadt.zeros(12 * 5);                         // 184 X_PM1b_CNT, X_PM2_CNT, X_PM_TMR, X_GPE0, X_GPE1
  fadt.zeros(24);                             // 244 SLEEP_CONTROL_REG, SLEEP_STATUS_REG
  fadt.string("ARCHE-HV");                    // 268 hypervisor vendor identity
  uint64_t fadt_at = place(finish(fadt));

  ByteWriter madt = table_header("APIC", 4);
  madt.le32(static_cast<uint32_t>(layout::lapic));
  madt.le32(1);  // PCAT_COMPAT: there are 8259 PICs too
  for (unsigned cpu = 0; cpu < l.cpus; ++cpu) {
    madt.u8(0), madt.u8(8), madt.u8(static_cast<uint8_t>(cpu)), madt.u8(static_cast<uint8_t>(cpu));
    madt.le32(1);  // enabled
  }
  madt.u8(1), madt.u8(12), madt.u8(static_cast<uint8_t>(l.cpus)), madt.u8(0);  // IOAPIC id after the CPUs
  madt.le32(static_cast<uint32_t>(layout::ioapic));
  madt.le32(0);  // GSI base
  // ISA IRQ 0 (PIT) is wired to IOAPIC pin 2; the SCI is level, active high.
  madt.u8(2), madt.u8(10), madt.u8(0), madt.u8(0), madt.le32(2), madt.le16(0);
  madt.u8(2), madt.u8(10), madt.u8(0), madt.u8(layout::sci_irq), madt.le32(layout::sci_irq), madt.le16(0x000d);
  madt.u8(4), madt.u8(6), madt.u8(0xff), madt.le16(0), madt.u8(1);  // LINT1 of all CPUs is NMI
  uint64_t madt_at = place(finish(madt));

  ByteWriter xsdt = table_header("XSDT", 1);
  xsdt.le64(fadt_at);
  xsdt.le64(madt_at);
  uint64_t xsdt_at = place(finish(xsdt));

  ByteWriter rsdp;
  rsdp.string("RSD PTR ");
  rsdp.u8(0);  // checksum of the first 20 bytes
  rsdp.string("ARCHE ");
  rsdp.u8(2);  // revision: ACPI 2.0+
  rsdp.le32(0);  // no RSDT
  rsdp.le32(36);
  rsdp.le64(xsdt_at);
  rsdp.u8(0);  // extended checksum
  rsdp.zeros(3);
  std::vector<uint8_t> r = rsdp.take();
  r[8] = checksum(r.data(), 20);
  r[32] = checksum(r.data(), 36);
  memory.write(layout::acpi_tables, r);
  return layout::acpi_tables;
}

}  // namespace arche::hv
