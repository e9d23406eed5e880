// The VMM proven with the test guest (tests/guest): boot, serial, virtio-blk on a
// qcow2 overlay, QEMU parity, SMP, malformed queues, the control socket, detached
// VMs, and the pause / state / disk-swap path the snapshot engine builds on.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "core/error.h"
#include "hv/control.h"
#include "hv/kvm.h"
#include "hv/machine.h"
#include "image/format.h"
#include "tests/hv/guest_protocol.h"
#include "tests/hv/hv_test_util.h"

namespace arche::test {
namespace {

std::string sha_of(const std::string& path) {
  CommandResult r = run({"sha256sum", path});
  return r.out.substr(0, 64);
}

// "read: disk 0 sectors 0+256 checksum 0123..." -> the checksum.
std::string checksum_in(const std::string& out, const std::string& prefix) {
  std::regex re(prefix + R"([^\n]*checksum ([0-9a-f]{16}))");
  std::smatch m;
  if (!std::regex_search(out, m, re)) return "";
  return m[1];
}

class GuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!kvm_usable(&why)) GTEST_SKIP() << "needs /dev/kvm: " << why;
  }
  TempDir dir;
};

// Acceptance 1: boot, serial, write + read through virtio-blk on a qcow2 overlay
// over a raw base; the host sees the pattern, the base is untouched.
TEST_F(GuestTest, WritesAndReadsAQcow2OverlayOnARawBase) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  std::string base = dir.file("base.raw"), overlay = dir.file("overlay.qcow2");
  write_file(base, random_bytes(16 << 20, 11));
  std::string base_sha = sha_of(base);
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", overlay}).exit_code, 0);

  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "128M", "--disk", overlay,
                           "--cmdline", "write=64,128,7 read=64,128 read=0,64 flush exit=0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("arche test guest: hello"), std::string::npos) << r.out;
  std::vector<uint8_t> pattern = guest_pattern(64, 128, 7);
  EXPECT_EQ(checksum_in(r.out, "write: disk 0 sectors 64\\+128"), guest_checksum(pattern)) << r.out;
  EXPECT_EQ(checksum_in(r.out, "read: disk 0 sectors 64\\+128"), guest_checksum(pattern)) << r.out;
  std::vector<uint8_t> base_data = read_file(base);
  std::vector<uint8_t> first(base_data.begin(), base_data.begin() + 64 * 512);
  EXPECT_EQ(checksum_in(r.out, "read: disk 0 sectors 0\\+64"), guest_checksum(first)) << "reads fall through to the base";
  EXPECT_NE(r.out.find("flush: disk 0 status 0"), std::string::npos);

  // The host sees the pattern through arche image and qemu-img.
  CommandResult rd = arche({"image", "read", overlay, std::to_string(64 * 512), std::to_string(128 * 512), "--to",
                            dir.file("out.bin")});
  ASSERT_EQ(rd.exit_code, 0) << rd.err;
  EXPECT_EQ(read_file(dir.file("out.bin")), pattern);
  std::vector<uint8_t> expected = base_data;
  std::copy(pattern.begin(), pattern.end(), expected.begin() + 64 * 512);
  write_file(dir.file("expected.raw"), expected);
  CommandResult cmp = run({"qemu-img", "compare", "-f", "qcow2", "-F", "raw", overlay, dir.file("expected.raw")});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  EXPECT_EQ(sha_of(base), base_sha) << "the base image was modified";
  CommandResult check = run({"qemu-img", "check", overlay});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

// virtio-blk DISCARD and WRITE_ZEROES reach the image: the ranges read as zeros
// and the qcow2 clusters are released; GET_ID names the disk.
TEST_F(GuestTest, DiscardAndWriteZeroesReachTheImage) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  std::string disk = dir.file("disk.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", disk, "8M"}).exit_code, 0);
  CommandResult r = arche({"vm", "run", "--name", "zero", "--kernel", test_guest(), "--memory", "32M", "--disk", disk,
                           "--cmdline", "write=0,512,4 zeroes=0,128,1 discard=128,128 read=0,256 read=256,256 getid"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("zeroes: disk 0 sectors 0+128 status 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("discard: disk 0 sectors 128+128 status 0"), std::string::npos) << r.out;
  EXPECT_EQ(checksum_in(r.out, "read: disk 0 sectors 0\\+256"), guest_checksum(std::vector<uint8_t>(256 * 512, 0)))
      << r.out;
  EXPECT_EQ(checksum_in(r.out, "read: disk 0 sectors 256\\+256"), guest_checksum(guest_pattern(256, 256, 4))) << r.out;
  EXPECT_NE(r.out.find("getid: disk 0 status 0 id 'arche-zero-0'"), std::string::npos) << r.out;
  // The first 128 KiB (two 64 KiB clusters) hold no data any more; the rest does.
  CommandResult map = run({"qemu-img", "map", "--output=json", disk});
  ASSERT_EQ(map.exit_code, 0) << map.err;
  Json extents = Json::parse(map.out);
  ASSERT_FALSE(extents.empty());
  EXPECT_EQ(extents[0]["start"], 0);
  EXPECT_EQ(extents[0]["data"], false) << map.out;
  EXPECT_GE(extents[0]["length"].get<uint64_t>(), 128u * 1024) << map.out;
  EXPECT_EQ(run({"qemu-img", "check", disk}).exit_code, 0);
}

// Acceptance 2: QEMU boots the same ELF (PVH note) and computes the same checksum.
TEST_F(GuestTest, QemuBootsTheSameGuestWithTheSameChecksum) {
  ARCHE_REQUIRE_PROGRAM("qemu-system-x86_64");
  std::string disk = dir.file("disk.raw");
  write_file(disk, std::vector<uint8_t>(8 << 20, 0));
  std::string cmdline = "write=8,64,5 read=8,64";
  CommandResult a = arche({"vm", "run", "--kernel", test_guest(), "--memory", "128M", "--disk", disk + ",format=raw",
                           "--cmdline", cmdline});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  std::string ours = checksum_in(a.out, "read: disk 0 sectors 8\\+64");
  ASSERT_EQ(ours, guest_checksum(guest_pattern(8, 64, 5)));

  write_file(disk, std::vector<uint8_t>(8 << 20, 0));
  CommandResult q = run({"timeout", "300", "qemu-system-x86_64", "-enable-kvm", "-M", "pc", "-m", "128M", "-nodefaults",
                         "-display", "none", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x501,iosize=1",
                         "-drive", "file=" + disk + ",format=raw,if=none,id=d0", "-device",
                         "virtio-blk-pci,drive=d0,disable-legacy=on", "-kernel", test_guest(), "-append", cmdline});
  EXPECT_EQ(q.exit_code, 1) << "isa-debug-exit reports (0 << 1) | 1\n" << q.out << q.err;
  EXPECT_NE(q.out.find("arche test guest: hello"), std::string::npos) << q.out << q.err;
  EXPECT_EQ(checksum_in(q.out, "read: disk 0 sectors 8\\+64"), ours) << q.out;
}

// Acceptance 3: with two vCPUs both run guest code.
TEST_F(GuestTest, BothVcpusRunGuestCode) {
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "64M", "--cpus", "2", "--cmdline", "smp=2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cpu 0: hello from the boot processor"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu 1: hello from an application processor"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("smp: 2 of 2 cpus online"), std::string::npos) << r.out;
}

// A completed request raises the queue interrupt (ISR bit 0, INTx); reading the
// ISR clears it.
TEST_F(GuestTest, CompletedRequestsSetTheIsr) {
  std::string disk = dir.file("d.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", disk, "1M"}).exit_code, 0);
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--disk", disk, "--cmdline",
                           "read=0,8 isr isr"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  size_t first = r.out.find("isr: disk 0 1\r\n");
  EXPECT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("isr: disk 0 0\r\n", first), std::string::npos) << r.out;
}

// --cpu baseline hides what the named model lacks; --cpu host passes what KVM offers.
TEST_F(GuestTest, CpuModelsShapeWhatTheGuestSees) {
  auto field = [](const std::string& out, const std::string& key) {
    std::smatch m;
    std::regex re(key + " ([0-9a-f]+)");
    return std::regex_search(out, m, re) ? std::stoul(m[1], nullptr, 16) : ~0ul;
  };
  hv::CpuidTable supported = hv::Kvm::open().supported_cpuid();
  const kvm_cpuid_entry2* l0 = supported.find(0);
  const kvm_cpuid_entry2* l1 = supported.find(1);
  ASSERT_TRUE(l0 && l1);
  CommandResult base = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--cpu", "baseline",
                              "--cmdline", "cpuid"});
  ASSERT_EQ(base.exit_code, 0) << base.err;
  CommandResult host = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--cpu", "host", "--cmdline",
                              "cpuid"});
  ASSERT_EQ(host.exit_code, 0) << host.err;
  // Leaf 0: the baseline stops at 0xc; host mode shows KVM's maximum.
  EXPECT_EQ(field(base.out, "max"), std::min<unsigned long>(l0->eax, 0xc)) << base.out;
  EXPECT_EQ(field(host.out, "max"), l0->eax) << host.out;
  // Leaves 1 and 7 reach the guest only if the host's KVM applies the table to them
  // (the nested KVM of the test machines answers them from the real CPU).
  unsigned long seen = field(host.out, "leaf1 ecx") & ~(1ul << 27);  // OSXSAVE is the OS's bit
  if (seen != (l1->ecx & ~(1u << 27)))
    GTEST_SKIP() << "the host's KVM ignores the CPUID table for leaf 1: the guest sees ecx " << std::hex << seen
                 << ", the table says " << l1->ecx;
  EXPECT_EQ(field(base.out, "leaf7 ebx"), 0u) << base.out;
  EXPECT_EQ(field(base.out, "leaf1 ecx") & ((1u << 26) | (1u << 28)), 0u) << "no xsave/avx in baseline\n" << base.out;
  EXPECT_NE(field(base.out, "leaf1 ecx") & (1u << 31), 0u) << "hypervisor bit\n" << base.out;
}

TEST_F(GuestTest, VirtioRngGivesRandomBytes) {
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--cmdline", "rng"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("virtio-rng"), std::string::npos);
  EXPECT_NE(r.out.find("rng: got 64 and 64 bytes, different"), std::string::npos) << r.out;
}

// The guest's exit port status is the command's exit status; bad kernels are errors.
TEST_F(GuestTest, ExitStatusIsTheGuestsAndBadKernelsFail) {
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--cmdline", "exit=42"});
  EXPECT_EQ(r.exit_code, 42) << r.out << r.err;
  write_file(dir.file("junk"), random_bytes(8192, 1));
  CommandResult bad = arche({"vm", "run", "--kernel", dir.file("junk")});
  EXPECT_EQ(bad.exit_code, 65) << bad.err;  // format
  EXPECT_NE(bad.err.find("neither a PVH ELF nor a Linux bzImage"), std::string::npos) << bad.err;
  CommandResult missing = arche({"vm", "run", "--kernel", dir.file("nope")});
  EXPECT_EQ(missing.exit_code, 66) << missing.err;
}

// Acceptance 5, the failure half, made deterministic: the guest jumps into the PCI
// hole, KVM cannot fetch the instruction and returns KVM_EXIT_INTERNAL_ERROR. arche
// must name the exit, RIP and the instruction bytes and exit non-zero at once.
TEST_F(GuestTest, KvmGivingUpIsReportedAndExitsNonZeroAtOnce) {
  auto start = std::chrono::steady_clock::now();
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "32M", "--cmdline", "jump-mmio"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 82) << r.out << r.err;
  EXPECT_NE(r.out.find("guest: jumping to 0xfebf0000"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("KVM_EXIT_INTERNAL_ERROR"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("emulation failure"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("RIP 0xfebf0000"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("instruction bytes at RIP"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 30.0) << "the VMM must not linger after KVM gave up";
}

// Acceptance 6: malformed queues break only the device that got them.
TEST_F(GuestTest, MalformedVirtqueuesMarkOnlyThatDeviceBroken) {
  std::string d0 = dir.file("d0.qcow2"), d1 = dir.file("d1.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", d0, "8M"}).exit_code, 0);
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", d1, "8M"}).exit_code, 0);
  CommandResult r = arche({"vm", "run", "--kernel", test_guest(), "--memory", "64M", "--disk", d0, "--disk", d1,
                           "--cmdline",
                           "disk=0 write=0,16,3 disk=1 badqueue=loop disk=0 read=0,16 disk=1 badqueue=oob "
                           "badqueue=len badqueue=avail badqueue=ring write=0,8,9 read=0,8 disk=0 read=0,16"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* kind : {"loop", "oob", "len", "avail", "ring"}) {
    EXPECT_NE(r.out.find(std::string("badqueue: ") + kind + ": device status 4f needs-reset 1"), std::string::npos)
        << kind << "\n" << r.out;
    EXPECT_NE(r.out.find(std::string("badqueue: ") + kind + ": re-initialised: ok"), std::string::npos) << r.out;
  }
  EXPECT_NE(r.err.find("descriptor chain from 0 loops"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("outside guest RAM"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("available index jumped"), std::string::npos) << r.err;
  // The other disk kept working throughout, and the broken one works after a reset.
  std::string good = guest_checksum(guest_pattern(0, 16, 3));
  EXPECT_EQ(count_of(r.out, "read: disk 0 sectors 0+16 checksum " + good), 2u) << r.out;
  EXPECT_EQ(checksum_in(r.out, "read: disk 1 sectors 0\\+8"), guest_checksum(guest_pattern(0, 8, 9))) << r.out;
}

// Acceptance 7: the control socket while the guest runs.
TEST_F(GuestTest, ControlSocketPausesResumesReportsAndQuits) {
  std::string sock = dir.file("vm.sock"), console = dir.file("console.log");
  Background vm({arche_binary(), "vm", "run", "--name", "ticker", "--kernel", test_guest(), "--memory", "32M",
                 "--cmdline", "ticks", "--serial", "file:" + console, "--control", sock},
                dir.file("out"), dir.file("err"));
  ASSERT_TRUE(wait_for_text(console, "tick 2", 60000)) << read_text(console) << read_text(dir.file("err"));

  Json status = hv::control_request(sock, Json{{"command", "status"}});
  EXPECT_TRUE(status["ok"].get<bool>());
  EXPECT_EQ(status["name"], "ticker");
  EXPECT_EQ(status["state"], "running");

  Json paused = hv::control_request(sock, Json{{"command", "pause"}});
  EXPECT_EQ(paused["state"], "paused");
  EXPECT_EQ(hv::control_request(sock, Json{{"command", "status"}})["state"], "paused");
  size_t before = read_text(console).size();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(read_text(console).size(), before) << "the guest printed while paused";

  // Garbage gets an error reply, and the connection and VM survive it.
  std::string garbage = unix_exchange(sock, "this is not json\n{\"command\":\"explode\"}\n", 2);
  EXPECT_EQ(count_of(garbage, "\"ok\":false"), 2u) << garbage;
  EXPECT_NE(garbage.find("malformed request"), std::string::npos) << garbage;
  EXPECT_NE(garbage.find("unknown command 'explode'"), std::string::npos) << garbage;

  Json resumed = hv::control_request(sock, Json{{"command", "resume"}});
  EXPECT_EQ(resumed["state"], "running");
  std::string tick_after = "tick " + std::to_string(count_of(read_text(console), "tick ") + 1);
  EXPECT_TRUE(wait_for_text(console, tick_after, 30000)) << "no tick after resume";

  Json quit = hv::control_request(sock, Json{{"command", "quit"}});
  EXPECT_TRUE(quit["ok"].get<bool>());
  EXPECT_EQ(vm.wait(10000), 0) << read_text(dir.file("err"));
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the socket should be gone";
}

// arche vm start VM.toml (detached) + status/pause/resume/stop by name.
TEST_F(GuestTest, StartDetachedFromTomlThenControlByName) {
  std::string disk = dir.file("disk.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", disk, "8M"}).exit_code, 0);
  std::ofstream(dir.file("vm.toml")) << "name = \"bg-test\"\nmemory = \"32M\"\ncpus = 1\nkernel = \"" << test_guest()
                                      << "\"\ncmdline = \"write=0,8,1 ticks\"\ncpu = \"baseline\"\n"
                                      << "[[disk]]\npath = \"disk.qcow2\"\nformat = \"qcow2\"\n";
  std::string rundir = dir.file("run");
  CommandResult start = arche({"vm", "start", dir.file("vm.toml"), "--run-dir", rundir});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  EXPECT_NE(start.out.find("vm bg-test started"), std::string::npos) << start.out;
  ASSERT_TRUE(wait_for_text(rundir + "/bg-test.console", "tick 1", 60000)) << read_text(rundir + "/bg-test.console");

  CommandResult st = arche({"vm", "status", "bg-test", "--run-dir", rundir, "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  Json j = Json::parse(st.out);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["disks"][0]["format"], "qcow2");
  EXPECT_GE(j["disks"][0]["requests"].get<int>(), 1);
  EXPECT_EQ(arche({"vm", "pause", "bg-test", "--run-dir", rundir}).exit_code, 0);
  EXPECT_NE(arche({"vm", "status", "bg-test", "--run-dir", rundir}).out.find("state: paused"), std::string::npos);
  EXPECT_EQ(arche({"vm", "resume", "bg-test", "--run-dir", rundir}).exit_code, 0);
  CommandResult stop = arche({"vm", "stop", "bg-test", "--run-dir", rundir});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  CommandResult gone = arche({"vm", "status", "bg-test", "--run-dir", rundir});
  EXPECT_EQ(gone.exit_code, 66) << gone.err;  // not found: nobody listens any more
  // The disk is closed and consistent.
  EXPECT_EQ(run({"qemu-img", "check", disk}).exit_code, 0);
}

// The snapshot engine's path: pause, read every piece of state, swap the disk for a
// fresh overlay on top of the old one, resume; later writes land in the new layer.
TEST_F(GuestTest, PausedMachineGivesStateAndSwapsItsDisk) {
  std::string ov1 = dir.file("ov1.qcow2"), ov2 = dir.file("ov2.qcow2"), console = dir.file("console.log");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", ov1, "8M"}).exit_code, 0);
  hv::VmConfig c;
  c.name = "swap";
  c.memory = 32 << 20;
  c.kernel = test_guest();
  c.cmdline = "write=0,8,1 sleep=3000 write=8,8,2 read=0,16 exit=0";
  c.serial = "file:" + console;
  c.disks.push_back({ov1, "qcow2", false});
  auto owned = std::make_unique<hv::Machine>(c);
  hv::Machine& machine = *owned;
  hv::StopReason stop;
  std::thread runner([&] { stop = machine.run(); });
  bool wrote = wait_for_text(console, "write: disk 0 sectors 0+8", 60000);
  if (!wrote) {
    machine.request_stop({hv::StopKind::quit, 0, "test"});
    runner.join();
    FAIL() << read_text(console);
  }
  machine.pause();
  ASSERT_TRUE(machine.paused());
  hv::MachineState s = machine.save_state();
  EXPECT_EQ(s.vcpus.size(), 1u);
  EXPECT_GT(s.vcpus[0].regs.rip, 0x100000u);
  EXPECT_GT(s.vcpus[0].msrs.size(), 10u);
  EXPECT_EQ(s.cpu_model, "baseline");
  ASSERT_EQ(s.disks.size(), 1u);
  EXPECT_EQ(s.disks[0].disk_file, ov1);
  EXPECT_TRUE(s.disks[0].transport.status & 4) << "driver ok";
  EXPECT_GE(s.disks[0].transport.queues[0].next_used, 1u);
  EXPECT_EQ(s.disks[0].transport.queues[0].next_used, s.disks[0].transport.queues[0].next_avail);
  EXPECT_EQ(s.irqchip.ioapic.chip_id, static_cast<uint32_t>(KVM_IRQCHIP_IOAPIC));

  image::CreateOptions co;
  co.format = "qcow2";
  co.size = 8 << 20;
  co.backing_file = "ov1.qcow2";
  co.backing_format = "qcow2";
  image::create_image(ov2, co);
  image::OpenOptions oo;
  oo.writable = true;
  oo.format = "qcow2";
  oo.force_share = true;  // its backing is the old top, still open until the swap returns it
  std::unique_ptr<image::BlockDevice> old = machine.replace_disk(0, image::open_image(ov2, oo));
  EXPECT_EQ(old->filename(), ov1);
  old.reset();
  machine.resume();
  runner.join();
  owned.reset();  // closes the disks
  EXPECT_EQ(stop.kind, hv::StopKind::exit_port) << stop.message << read_text(console);
  std::string out = read_text(console);
  std::vector<uint8_t> both = guest_pattern(0, 8, 1);
  std::vector<uint8_t> second = guest_pattern(8, 8, 2);
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_EQ(checksum_in(out, "read: disk 0 sectors 0\\+16"), guest_checksum(both)) << out;
  // The second write is only in the new overlay; the old top holds only the first.
  CommandResult r1 = arche({"image", "read", ov1, "4096", "4096", "--to", dir.file("ov1-8.bin")});
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_EQ(read_file(dir.file("ov1-8.bin")), std::vector<uint8_t>(4096, 0));
  CommandResult r2 = arche({"image", "read", ov2, "0", "8192", "--to", dir.file("ov2.bin")});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(read_file(dir.file("ov2.bin")), both);
}

}  // namespace
}  // namespace arche::test
