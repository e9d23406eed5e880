// Image locks that QEMU sees (issue 9, point 1): qemu-nbd, qemu-io and
// qemu-system-x86_64 holding an image while arche tries to use it, and arche (its
// library, `image write`'s code, and an arche VM) holding one while qemu-img and
// qemu-io try. Each side refuses what the other holds; -U reads anyway.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <memory>

#include "core/error.h"
#include "core/file.h"
#include "hv/kvm.h"
#include "image/format.h"
#include "image/image_lock.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

// The byte QEMU locks while it holds the write permission.
constexpr uint64_t kWriteHeldByte = image::kLockHeldBase + 1;
constexpr uint64_t kWriteUnsharedByte = image::kLockUnsharedBase + 1;

std::string make_qcow2(const TempDir& dir, const std::string& name) {
  std::string path = dir.file(name);
  CommandResult r = arche({"image", "create", "-f", "qcow2", path, "16M"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

bool byte_held_by_other(const std::string& path, uint64_t byte) {
  File f = File::open(path, OpenMode::read_only);
  return f.byte_locked_by_other(byte);
}

// Starts `argv`, waits until it holds `byte` of `image` (or dies: then fails).
std::unique_ptr<ChildProcess> start_holder(const std::vector<std::string>& argv, const std::string& image,
                                           uint64_t byte = kWriteHeldByte) {
  auto peer = std::make_unique<ChildProcess>(argv);
  bool held = wait_for([&] { return byte_held_by_other(image, byte) || !peer->running(); });
  EXPECT_TRUE(held && peer->running()) << argv[0] << " did not take its lock: " << peer->err();
  return peer;
}

void expect_refused(const CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 75) << what << ": " << r.out << r.err;
  EXPECT_NE(r.err.find("is in use"), std::string::npos) << what << ": " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": one line expected: " << r.err;
}

void expect_qemu_refused(const CommandResult& r, const std::string& what) {
  EXPECT_NE(r.exit_code, 0) << what << " succeeded on an image arche holds: " << r.out;
  EXPECT_NE((r.out + r.err).find("lock"), std::string::npos) << what << ": " << r.out << r.err;
}

// Every way arche can try to use an image a peer holds for writing.
void expect_arche_refuses_writes_and_reads(const std::string& image, const std::string& peer) {
  expect_refused(arche({"image", "write", image, "0", "--pattern", "0x11", "--length", "512"}), peer + ": image write");
  expect_refused(arche({"image", "resize", image, "+1M"}), peer + ": image resize");
  CommandResult info = arche({"image", "info", image});
  expect_refused(info, peer + ": image info without -U");
  EXPECT_NE(info.err.find("-U/--force-share"), std::string::npos) << info.err;
  CommandResult shared = arche({"image", "info", "-U", image});
  EXPECT_EQ(shared.exit_code, 0) << peer << ": image info -U: " << shared.err;
  EXPECT_NE(shared.out.find("virtual size: 16 MiB"), std::string::npos) << shared.out;
}

TEST(ImageLock, RequestsFollowQemusTable) {
  image::LockRequest writer = image::lock_request_for(true, false);
  EXPECT_EQ(writer.held,
            image::kPermConsistentRead | image::kPermWrite | image::kPermWriteUnchanged | image::kPermResize);
  EXPECT_EQ(writer.shared & (image::kPermWrite | image::kPermResize), 0u);
  image::LockRequest reader = image::lock_request_for(false, false);
  EXPECT_EQ(reader.held, image::kPermConsistentRead);
  EXPECT_EQ(reader.shared & (image::kPermWrite | image::kPermResize), 0u);
  image::LockRequest shared = image::lock_request_for(false, true);
  EXPECT_EQ(shared.shared, image::kPermAll);
}

TEST(ImageLock, ArcheAgainstArche) {
  TempDir dir;
  std::string img = make_qcow2(dir, "a.qcow2");
  image::OpenOptions w;
  w.writable = true;
  {
    auto writer = image::open_image(img, w);
    EXPECT_TRUE(byte_held_by_other(img, kWriteHeldByte));
    EXPECT_TRUE(byte_held_by_other(img, kWriteUnsharedByte));
    EXPECT_THROW(image::open_image(img, w), Error) << "a second writer";
    EXPECT_THROW(image::open_image(img, {}), Error) << "a reader without force_share";
    image::OpenOptions u;
    u.force_share = true;
    EXPECT_NO_THROW(image::open_image(img, u)) << "-U reads anyway";
  }
  {
    auto reader = image::open_image(img, {});
    EXPECT_FALSE(byte_held_by_other(img, kWriteHeldByte));
    EXPECT_TRUE(byte_held_by_other(img, kWriteUnsharedByte)) << "a reader keeps writers out";
    EXPECT_NO_THROW(image::open_image(img, {})) << "readers share";
    try {
      image::open_image(img, w);
      ADD_FAILURE() << "a writer while a reader reads";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::busy);
      EXPECT_NE(std::string(e.what()).find("does not let others write"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(byte_held_by_other(img, kWriteUnsharedByte)) << "closing releases every byte";
  EXPECT_NO_THROW(image::open_image(img, w));
}

TEST(ImageLock, QemuNbdHoldsTheImage) {
  ARCHE_REQUIRE_PROGRAM("qemu-nbd");
  TempDir dir;
  std::string img = make_qcow2(dir, "served.qcow2");
  {
    auto nbd = start_holder({"qemu-nbd", "--persistent", "--socket=" + dir.file("nbd.sock"), "-f", "qcow2", img}, img);
    expect_arche_refuses_writes_and_reads(img, "qemu-nbd");
    // The library says the same, with the category the CLI maps to 75.
    image::OpenOptions w;
    w.writable = true;
    try {
      image::open_image(img, w);
      ADD_FAILURE() << "arche opened an image qemu-nbd serves for writing";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::busy) << e.what();
    }
  }
  // The peer is gone: the same write works.
  CommandResult r = arche({"image", "write", img, "0", "--pattern", "0x11", "--length", "512"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ImageLock, ReadOnlyQemuNbdKeepsArcheWritersOut) {
  ARCHE_REQUIRE_PROGRAM("qemu-nbd");
  TempDir dir;
  std::string img = make_qcow2(dir, "ro.qcow2");
  auto nbd =
      start_holder({"qemu-nbd", "--persistent", "--read-only", "--socket=" + dir.file("nbd.sock"), "-f", "qcow2", img},
                   img, kWriteUnsharedByte);
  expect_refused(arche({"image", "write", img, "0", "--pattern", "1", "--length", "512"}), "read-only qemu-nbd");
  // Two readers get along.
  CommandResult info = arche({"image", "info", img});
  EXPECT_EQ(info.exit_code, 0) << info.err;
}

TEST(ImageLock, QemuIoHoldsTheImage) {
  ARCHE_REQUIRE_PROGRAM("qemu-io");
  TempDir dir;
  std::string img = make_qcow2(dir, "io.qcow2");
  // qemu-io opens the image read-write and then sleeps in its command loop.
  auto io = start_holder({"qemu-io", "-f", "qcow2", "-c", "sleep 600000", img}, img);
  expect_arche_refuses_writes_and_reads(img, "qemu-io");
}

TEST(ImageLock, QemuVmHoldsTheImage) {
  ARCHE_REQUIRE_PROGRAM("qemu-system-x86_64");
  TempDir dir;
  std::string img = make_qcow2(dir, "vm.qcow2");
  // Stopped at the first instruction (-S), with TCG: no KVM needed to hold a disk.
  auto vm = start_holder({"qemu-system-x86_64", "-S", "-nodefaults", "-display", "none", "-machine", "accel=tcg",
                          "-drive", "file=" + img + ",format=qcow2,if=virtio"},
                         img);
  expect_arche_refuses_writes_and_reads(img, "qemu-system-x86_64");
  expect_refused(arche({"image", "commit", img}), "commit into an image a VM uses");
}

// The other way round: arche holds, the QEMU tools are refused.
void expect_qemu_refuses(const std::string& img, bool arche_writes) {
  expect_qemu_refused(qemu_img({"resize", img, "+1M"}), "qemu-img resize");
  expect_qemu_refused(qemu_io(img, "qcow2", {"write -P 0x22 0 512"}), "qemu-io write");
  CommandResult shared = qemu_img({"info", "-U", img});
  EXPECT_EQ(shared.exit_code, 0) << "qemu-img info -U: " << shared.err;
  CommandResult info = qemu_img({"info", img});
  if (arche_writes) expect_qemu_refused(info, "qemu-img info without -U");
  else EXPECT_EQ(info.exit_code, 0) << "two readers: " << info.err;
}

TEST(ImageLock, ArcheWriterKeepsQemuOut) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = make_qcow2(dir, "held.qcow2");
  image::OpenOptions w;
  w.writable = true;
  {
    auto dev = image::open_image(img, w);  // what `arche image write` holds while it writes
    expect_qemu_refuses(img, true);
  }
  EXPECT_EQ(qemu_img({"resize", img, "+1M"}).exit_code, 0) << "released on close";
}

TEST(ImageLock, ArcheReaderKeepsQemuWritersOut) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = make_qcow2(dir, "read.qcow2");
  {
    auto dev = image::open_image(img, {});
    expect_qemu_refuses(img, false);
  }
  {
    image::OpenOptions u;
    u.force_share = true;
    auto dev = image::open_image(img, u);
    CommandResult w = qemu_io(img, "qcow2", {"write -P 0x22 0 512"});
    EXPECT_EQ(w.exit_code, 0) << "a -U reader lets others write: " << w.err;
  }
}

TEST(ImageLock, ArcheVmKeepsQemuOut) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  std::string why;
  if (!hv::kvm_available(&why)) GTEST_SKIP() << "needs /dev/kvm: " << why;
  if (::access(ARCHE_TEST_GUEST, R_OK) != 0) GTEST_SKIP() << "the test guest is not built: " << ARCHE_TEST_GUEST;
  TempDir dir;
  std::string img = make_qcow2(dir, "guest.qcow2");
  // The test guest ticks until it is stopped; the disk is open for the VM's life.
  auto vm = start_holder({arche_binary(), "vm", "run", "--kernel", ARCHE_TEST_GUEST, "--cmdline", "ticks", "--serial",
                          "file:" + dir.file("console.log"), "--disk", img},
                         img);
  expect_qemu_refuses(img, true);
  expect_refused(arche({"image", "write", img, "0", "--pattern", "1", "--length", "512"}), "arche vm");
}

}  // namespace
}  // namespace arche::test
