// Parts of the VMM that need no /dev/kvm: configuration, virtqueue validation,
// the control protocol, ACPI tables and the PVH loader.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "hv/boot/acpi.h"
#include "hv/boot/boot.h"
#include "hv/boot/kernel_payload.h"
#include "hv/config.h"
#include "hv/control.h"
#include "hv/cpuid.h"
#include "hv/devices/serial.h"
#include "hv/layout.h"
#include "hv/memory.h"
#include "hv/virtio/queue.h"
#include "tests/hv/hv_test_util.h"

namespace arche::hv {
namespace {

using test::TempDir;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(VmConfig, ReadsTheSharedTomlSchema) {
  TempDir dir;
  write_text(dir.file("vm.toml"), R"(
name = "fileserver"
memory = "2048M"
cpus = 2
kernel = "vmlinuz"
initrd = "/boot/initrd.img"
cmdline = "console=ttyS0"
serial = "file:console.log"
control = "/run/arche/fs.sock"
cpu = "host"
[[disk]]
path = "disk.qcow2"
format = "qcow2"
[[disk]]
path = "data.raw"
readonly = true
[[net]]
tap = "tap0"
mac = "52:54:00:12:34:56"
model = "virtio"
network = "LAN"
)");
  VmConfig c = load_vm_config(dir.file("vm.toml"));
  EXPECT_EQ(c.name, "fileserver");
  EXPECT_EQ(c.memory, 2048ull << 20);
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.kernel, dir.file("vmlinuz"));  // relative to the .toml
  EXPECT_EQ(c.initrd, "/boot/initrd.img");
  EXPECT_EQ(c.serial, "file:" + dir.file("console.log"));
  EXPECT_EQ(c.cpu, CpuModel::host);
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_EQ(c.disks[0].path, dir.file("disk.qcow2"));
  EXPECT_EQ(c.disks[0].format, "qcow2");
  EXPECT_FALSE(c.disks[0].readonly);
  EXPECT_TRUE(c.disks[1].readonly);
  ASSERT_EQ(c.nets.size(), 1u);
  EXPECT_EQ(c.nets[0].tap, "tap0");
  EXPECT_EQ(c.nets[0].network, "LAN");
}

TEST(VmConfig, UnknownKeysAreErrorsNamingTheKey) {
  TempDir dir;
  write_text(dir.file("a.toml"), "name = \"x\"\nkernel = \"k\"\nmemroy = \"1G\"\n");
  try {
    load_vm_config(dir.file("a.toml"));
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::usage);
    EXPECT_NE(std::string(e.what()).find("memroy"), std::string::npos) << e.what();
  }
  write_text(dir.file("b.toml"), "kernel = \"k\"\n[[disk]]\npath = \"d\"\nsize = 3\n");
  try {
    load_vm_config(dir.file("b.toml"));
    FAIL() << "unknown disk key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'size'"), std::string::npos) << e.what();
  }
  write_text(dir.file("c.toml"), "kernel = [\n");
  EXPECT_THROW(load_vm_config(dir.file("c.toml")), Error);
  write_text(dir.file("d.toml"), "kernel = 5\n");
  EXPECT_THROW(load_vm_config(dir.file("d.toml")), Error);
}

TEST(VmConfig, MirrorDiskLegsAreEachRelativeToTheToml) {
  TempDir dir;
  write_text(dir.file("vm.toml"),
             "kernel = \"k\"\n[[disk]]\npath = \"mirror:a.img+b.img\"\n[[disk]]\npath = \"mirror:c.img+/srv/d.img\"\n");
  VmConfig c = load_vm_config(dir.file("vm.toml"));
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_EQ(c.disks[0].path, "mirror:" + dir.file("a.img") + "+" + dir.file("b.img"));
  EXPECT_EQ(c.disks[1].path, "mirror:" + dir.file("c.img") + "+/srv/d.img");  // an absolute leg stays as written
}

TEST(VmConfig, DiskAndNetSpecs) {
  DiskConfig d = parse_disk_spec("a.qcow2,format=qcow2,readonly");
  EXPECT_EQ(d.path, "a.qcow2");
  EXPECT_EQ(d.format, "qcow2");
  EXPECT_TRUE(d.readonly);
  EXPECT_FALSE(parse_disk_spec("b.raw").readonly);
  EXPECT_THROW(parse_disk_spec("b.raw,cache=none"), Error);
  EXPECT_THROW(parse_disk_spec(",readonly"), Error);
  NetConfig n = parse_net_spec("tap=tap3,mac=52:54:00:00:00:01");
  EXPECT_EQ(n.tap, "tap3");
  EXPECT_EQ(n.mac, "52:54:00:00:00:01");
  EXPECT_THROW(parse_net_spec("mac=52:54:00:00:00:01"), Error);
  VmConfig c;
  c.kernel = "k";
  c.cpus = 0;
  EXPECT_THROW(c.validate(), Error);
  c.cpus = 1;
  c.serial = "tty";
  EXPECT_THROW(c.validate(), Error);
  EXPECT_THROW(parse_cpu_model("pentium"), Error);
}

// A queue in a small guest RAM, driven by hand like a (hostile) driver would.
class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : mem(16 << 20) {
    q.size = 8;
    q.desc = 0x10000;
    q.driver = 0x11000;
    q.device = 0x12000;
    q.enabled = true;
  }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* d = mem.ptr(q.desc + 16 * i, 16);
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  void offer(uint16_t head) {
    uint16_t idx;
    std::memcpy(&idx, mem.ptr(q.driver + 2, 2), 2);
    std::memcpy(mem.ptr(q.driver + 4 + 2 * (idx % q.size), 2), &head, 2);
    ++idx;
    std::memcpy(mem.ptr(q.driver + 2, 2), &idx, 2);
  }
  GuestMemory mem;
  QueueState q;
};

TEST_F(QueueTest, ValidChainSplitsReadableAndWritable) {
  desc(0, 0x20000, 16, 1, 1);
  desc(1, 0x21000, 512, 1 | 2, 2);
  desc(2, 0x22000, 1, 2, 0);
  offer(0);
  Virtqueue vq(mem, q);
  auto chain = vq.pop();
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->readable_bytes, 16u);
  EXPECT_EQ(chain->writable_bytes, 513u);
  EXPECT_FALSE(vq.pop());
  vq.push(chain->head, 513);
  uint16_t used_idx;
  std::memcpy(&used_idx, mem.ptr(q.device + 2, 2), 2);
  EXPECT_EQ(used_idx, 1);
}

TEST_F(QueueTest, DescriptorLoopIsAnError) {
  desc(0, 0x20000, 16, 1, 1);
  desc(1, 0x21000, 16, 1, 0);
  offer(0);
  Virtqueue vq(mem, q);
  EXPECT_THROW(vq.pop(), QueueError);
}

TEST_F(QueueTest, AddressesOutsideRamAndAbsurdLengthsAreErrors) {
  desc(0, 0x7ff000000000ull, 16, 0, 0);
  offer(0);
  {
    Virtqueue vq(mem, q);
    EXPECT_THROW(vq.pop(), QueueError);
  }
  q.next_avail = 0;
  desc(0, 0x20000, 0xfffff000u, 0, 0);
  Virtqueue vq(mem, q);
  EXPECT_THROW(vq.pop(), QueueError);
}

TEST_F(QueueTest, IndexJumpsNextBeyondSizeAndBadRingsAreErrors) {
  uint16_t idx = 1000;
  std::memcpy(mem.ptr(q.driver + 2, 2), &idx, 2);
  {
    Virtqueue vq(mem, q);
    EXPECT_THROW(vq.pop(), QueueError);
  }
  idx = 0;
  std::memcpy(mem.ptr(q.driver + 2, 2), &idx, 2);
  desc(0, 0x20000, 16, 1, 9);  // next beyond the queue
  offer(0);
  {
    Virtqueue vq(mem, q);
    EXPECT_THROW(vq.pop(), QueueError);
  }
  QueueState bad = q;
  bad.desc = 1ull << 40;
  EXPECT_THROW(Virtqueue(mem, bad), QueueError);
  bad = q;
  bad.size = 6;  // not a power of two
  EXPECT_THROW(Virtqueue(mem, bad), QueueError);
  bad = q;
  bad.driver = 0x11001;  // misaligned
  EXPECT_THROW(Virtqueue(mem, bad), QueueError);
}

TEST(GuestMemoryLayout, PciHoleSplitsLargeRam) {
  GuestMemory m(3ull << 30 | 512ull << 20);  // 3.5 GiB
  ASSERT_EQ(m.regions().size(), 2u);
  EXPECT_EQ(m.regions()[0].size, layout::pci_hole_start);
  EXPECT_EQ(m.regions()[1].guest_address, layout::four_gib);
  EXPECT_EQ(m.regions()[1].size, 512ull << 20);
  EXPECT_NE(m.ptr(layout::four_gib, 4096), nullptr);
  EXPECT_EQ(m.ptr(layout::pci_hole_start, 1), nullptr);       // the hole is not RAM
  EXPECT_EQ(m.ptr(layout::pci_hole_start - 8, 16), nullptr);  // nor a range into it
  std::vector<E820Entry> e820 = e820_map(m);
  ASSERT_EQ(e820.size(), 4u);
  EXPECT_EQ(e820[3].address, layout::four_gib);
}

TEST(ControlProtocol, RepliesToGarbageWithErrors) {
  TempDir dir;
  ControlServer server(dir.file("c.sock"));
  server.add_command("status", [](const Json&) { return Json{{"state", "running"}}; });
  auto reply = [&](const std::string& line) { return Json::parse(server.handle_line(line)); };
  EXPECT_EQ(reply(R"({"command":"status"})")["state"], "running");
  EXPECT_TRUE(reply(R"({"command":"status"})")["ok"].get<bool>());
  for (const char* bad : {"garbage", "{\"command\":", "[1,2]", "{\"verb\":\"status\"}", "{\"command\":7}", "\xff\xfe"}) {
    Json r = reply(bad);
    EXPECT_FALSE(r["ok"].get<bool>()) << bad;
    EXPECT_TRUE(r.contains("error")) << bad;
  }
  Json unknown = reply(R"({"command":"format-disk"})");
  EXPECT_FALSE(unknown["ok"].get<bool>());
  EXPECT_NE(unknown["error"].get<std::string>().find("unknown command"), std::string::npos);
}

TEST(Acpi, TablesHaveValidChecksumsAndListCpus) {
  GuestMemory m(64 << 20);
  uint64_t rsdp = write_acpi_tables(m, {4, {1, 2, 3}});
  const uint8_t* r = m.ptr(rsdp, 36);
  ASSERT_EQ(std::memcmp(r, "RSD PTR ", 8), 0);
  auto sum = [](const uint8_t* p, size_t n) {
    uint8_t s = 0;
    for (size_t i = 0; i < n; ++i) s = static_cast<uint8_t>(s + p[i]);
    return s;
  };
  EXPECT_EQ(sum(r, 20), 0);
  EXPECT_EQ(sum(r, 36), 0);
  uint64_t xsdt;
  std::memcpy(&xsdt, r + 24, 8);
  uint32_t xlen;
  std::memcpy(&xlen, m.ptr(xsdt + 4, 4), 4);
  EXPECT_EQ(sum(m.ptr(xsdt, xlen), xlen), 0);
  int cpus = 0;
  bool found_madt = false, found_fadt = false;
  for (uint32_t off = 36; off < xlen; off += 8) {
    uint64_t t;
    std::memcpy(&t, m.ptr(xsdt + off, 8), 8);
    uint32_t len;
    std::memcpy(&len, m.ptr(t + 4, 4), 4);
    const uint8_t* table = m.ptr(t, len);
    EXPECT_EQ(sum(table, len), 0);
    if (std::memcmp(table, "APIC", 4) == 0) {
      found_madt = true;
      for (uint32_t p = 44; p < len; p += table[p + 1])
        if (table[p] == 0) ++cpus;
    }
    if (std::memcmp(table, "FACP", 4) == 0) {
      found_fadt = true;
      uint32_t pm1_control;
      std::memcpy(&pm1_control, table + 64, 4);
      EXPECT_EQ(pm1_control, layout::pm1_control);
      uint64_t dsdt;
      std::memcpy(&dsdt, table + 140, 8);
      uint32_t dlen;
      std::memcpy(&dlen, m.ptr(dsdt + 4, 4), 4);
      std::string aml(reinterpret_cast<const char*>(m.ptr(dsdt, dlen)), dlen);
      EXPECT_EQ(sum(m.ptr(dsdt, dlen), dlen), 0);
      EXPECT_NE(aml.find("_S5_"), std::string::npos);
      EXPECT_NE(aml.find("PCI0"), std::string::npos);
      EXPECT_NE(aml.find("_PRT"), std::string::npos);
    }
  }
  EXPECT_TRUE(found_madt);
  EXPECT_TRUE(found_fadt);
  EXPECT_EQ(cpus, 4);
}

TEST(PvhLoader, LoadsTheTestGuestWithStartInfo) {
  GuestMemory m(64 << 20);
  BootEntry e = load_kernel(m, {test::test_guest(), "", "read=0,8 exit=3", 0xe0000});
  EXPECT_EQ(e.protocol, BootProtocol::pvh);
  EXPECT_EQ(e.entry, 0x100000u);
  uint32_t magic, version;
  std::memcpy(&magic, m.ptr(e.boot_info, 4), 4);
  std::memcpy(&version, m.ptr(e.boot_info + 4, 4), 4);
  EXPECT_EQ(magic, 0x336ec578u);
  EXPECT_EQ(version, 1u);
  uint64_t cmdline, rsdp, memmap;
  std::memcpy(&cmdline, m.ptr(e.boot_info + 24, 8), 8);
  std::memcpy(&rsdp, m.ptr(e.boot_info + 32, 8), 8);
  std::memcpy(&memmap, m.ptr(e.boot_info + 40, 8), 8);
  EXPECT_STREQ(reinterpret_cast<const char*>(m.ptr(cmdline, 1)), "read=0,8 exit=3");
  EXPECT_EQ(rsdp, 0xe0000u);
  uint32_t entries;
  std::memcpy(&entries, m.ptr(e.boot_info + 48, 4), 4);
  EXPECT_EQ(entries, 3u);
}

TEST(PvhLoader, RejectsElfWithoutPvhNoteAndGarbage) {
  TempDir dir;
  GuestMemory m(64 << 20);
  test::write_file(dir.file("junk"), test::random_bytes(4096, 3));
  EXPECT_THROW(load_kernel(m, {dir.file("junk"), "", "", 0}), Error);
  // A host ELF binary has no PVH note.
  EXPECT_THROW(load_kernel(m, {"/bin/true", "", "", 0}), Error);
  // A truncated copy of the guest.
  std::vector<uint8_t> g = test::read_file(test::test_guest());
  g.resize(200);
  test::write_file(dir.file("cut.elf"), g);
  EXPECT_THROW(load_kernel(m, {dir.file("cut.elf"), "", "", 0}), Error);
}

TEST(CpuModel, BaselineHidesXsaveAndAvx) {
  CpuidTable host;
  kvm_cpuid_entry2 l1{};
  l1.function = 1;
  l1.ecx = 0xffffffff;
  l1.edx = 0xffffffff;
  kvm_cpuid_entry2 l7{};
  l7.function = 7;
  l7.ebx = 0xffffffff;
  kvm_cpuid_entry2 ld{};
  ld.function = 0xd;
  ld.eax = 7;
  host.entries = {l1, l7, ld};
  CpuidTable b = filter_cpuid(host, CpuModel::baseline);
  ASSERT_NE(b.find(1), nullptr);
  EXPECT_EQ(b.find(1)->ecx & (1u << 26), 0u);  // xsave
  EXPECT_EQ(b.find(1)->ecx & (1u << 28), 0u);  // avx
  EXPECT_NE(b.find(1)->ecx & (1u << 13), 0u);  // cx16 stays (x86-64-v2)
  EXPECT_EQ(b.find(7)->ebx, 0u);
  EXPECT_EQ(b.find(0xd), nullptr);
  CpuidTable v = cpuid_for_vcpu(b, 3, 4);
  EXPECT_EQ(v.find(1)->ebx >> 24, 3u);
  EXPECT_EQ(filter_cpuid(host, CpuModel::host).entries.size(), 3u);
}

TEST(KernelPayload, DecompressesTheCloudKernelsPayload) {
  const char* env = std::getenv("ARCHE_CLOUD_KERNEL");
  std::string kernel = env ? env : "/var/cache/arche/vmlinuz-cloud-amd64";
  ASSERT_TRUE(::access(kernel.c_str(), R_OK) == 0)
      << kernel << " is missing: run scripts/install-deps.sh (it runs tests/hv/fetch-cloud-kernel.sh)";
  std::vector<uint8_t> bz = test::read_file(kernel);
  auto p = decompress_kernel_payload(bz);
  ASSERT_TRUE(p);
  ASSERT_GT(p->vmlinux.size(), 4u);
  EXPECT_EQ(std::memcmp(p->vmlinux.data(), "\x7f" "ELF", 4), 0);
  // A damaged payload is an error, not a crash.
  std::vector<uint8_t> broken = bz;
  unsigned setup = broken[0x1f1] ? broken[0x1f1] : 4;
  uint32_t off;
  std::memcpy(&off, &broken[0x248], 4);
  size_t at = (setup + 1) * 512 + off + 64;
  for (size_t i = 0; i < 4096; ++i) broken[at + i] ^= 0x5a;
  try {
    decompress_kernel_payload(broken);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::format);
  }
}

}  // namespace
}  // namespace arche::hv

namespace arche::hv {
namespace {

struct RecordingIrq : InterruptSink {
  std::vector<std::pair<unsigned, bool>> events;
  void set_irq_line(unsigned gsi, bool level) override { events.emplace_back(gsi, level); }
};

struct RecordingOutput : ConsoleOutput {
  std::string text;
  void write(const uint8_t* data, size_t size) override { text.append(reinterpret_cast<const char*>(data), size); }
};

TEST(Serial, TransmitsReceivesAndRaisesItsInterrupt) {
  RecordingIrq irq;
  RecordingOutput out;
  Serial uart(irq, 4, out);
  auto wr = [&](unsigned reg, uint8_t v) { uart.bus_write(reg, std::span<const uint8_t>(&v, 1)); };
  auto rd = [&](unsigned reg) {
    uint8_t v = 0;
    uart.bus_read(reg, std::span<uint8_t>(&v, 1));
    return v;
  };
  wr(0, 'h');
  wr(0, 'i');
  EXPECT_EQ(out.text, "hi");
  EXPECT_EQ(rd(5) & 0x60, 0x60) << "THR always empty";
  EXPECT_EQ(rd(5) & 1, 0) << "nothing received yet";

  wr(1, 0x01);  // receive interrupt on
  std::atomic<bool> stop{false};
  const uint8_t input[] = {'o', 'k'};
  ASSERT_TRUE(uart.receive(input, 2, stop));
  ASSERT_FALSE(irq.events.empty());
  EXPECT_EQ(irq.events.back(), std::make_pair(4u, true));
  EXPECT_EQ(rd(2) & 0x0f, 0x04) << "IIR: received data";
  EXPECT_EQ(rd(5) & 1, 1);
  EXPECT_EQ(rd(0), 'o');
  EXPECT_EQ(uart.state().rx, std::vector<uint8_t>{'k'}) << "unread input is part of the state";
  EXPECT_EQ(rd(0), 'k');
  EXPECT_EQ(irq.events.back(), std::make_pair(4u, false)) << "line lowered when nothing is pending";

  // Divisor latch and loopback (what Linux's probe does).
  wr(3, 0x80);
  wr(0, 0x01);
  EXPECT_EQ(rd(0), 0x01);
  wr(3, 0x03);
  wr(4, 0x10 | 0x02);  // loopback, RTS
  EXPECT_EQ(rd(6) & 0xf0, 0x10) << "RTS comes back as CTS";
  wr(0, 'x');
  EXPECT_EQ(rd(0), 'x');
  EXPECT_EQ(out.text, "hi") << "loopback output stays inside the UART";
  SerialState s = uart.state();
  EXPECT_EQ(s.lcr, 0x03);
  EXPECT_EQ(s.dll, 0x01);
  Serial copy(irq, 4, out);
  copy.restore(s);
  EXPECT_EQ(copy.state().mcr, s.mcr);
}

}  // namespace
}  // namespace arche::hv
