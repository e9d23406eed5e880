// Interrupts (issue 9, point 3), the image side: SIGINT, SIGTERM and SIGKILL at
// random points of `image convert` and `image commit`. After SIGINT/SIGTERM: exit
// 130/143, one line naming what was left as it was, no temporary file, the source
// intact, locks released. After SIGKILL the temporary file may stay (nothing can
// remove it) but never under the final name.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "image/format.h"
#include "image/image_lock.h"
#include "image/ops/convert.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

namespace fs = boost::filesystem;

std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".arche-tmp-") != std::string::npos) found.push_back(e.path().string());
  return found;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGKILL"; }

// Random points: a delay after the work has visibly started, the same on every run.
std::chrono::milliseconds random_delay(std::mt19937& rng) {
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng));
}

// A source whose conversion with -c on one thread takes a good while: random data
// does not compress, so every cluster costs a full zlib pass.
std::string make_source(const TempDir& dir, std::vector<uint8_t>* content) {
  *content = random_bytes(96 << 20, 9);
  std::string src = dir.file("src.raw");
  write_file(src, *content);
  return src;
}

TEST(Interrupt, ConvertAtRandomPoints) {
  TempDir dir;
  std::vector<uint8_t> content;
  std::string src = make_source(dir, &content);
  std::string dst = dir.file("dst.qcow2");
  std::mt19937 rng(42);
  for (int sig : {SIGINT, SIGTERM, SIGKILL}) {
    int interrupted = 0;
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE(std::string(signal_name(sig)) + " round " + std::to_string(round));
      ChildProcess convert({arche_binary(), "image", "convert", "-O", "qcow2", "-c", "-m", "1", src, dst});
      ASSERT_TRUE(wait_for([&] { return !temp_files(dir.path()).empty() || !convert.running(); }));
      std::this_thread::sleep_for(random_delay(rng));
      convert.signal(sig);
      int rc = convert.wait();
      if (rc == 0) {  // finished before the signal: then it is complete
        EXPECT_TRUE(temp_files(dir.path()).empty());
        EXPECT_EQ(read_all_arche(dst), content);
        fs::remove(dst);
        continue;
      }
      ++interrupted;
      EXPECT_FALSE(exists(dst)) << "an interrupted convert left " << dst;
      if (sig == SIGKILL) {
        EXPECT_EQ(rc, 128 + SIGKILL);
        for (const std::string& t : temp_files(dir.path())) {
          EXPECT_NE(t.find(".dst.qcow2.arche-tmp-" + std::to_string(convert.pid()) + "-"), std::string::npos) << t;
          fs::remove(t);
        }
      } else {
        EXPECT_EQ(rc, 128 + sig) << convert.err();
        std::string expected = std::string("arche: interrupted by ") + signal_name(sig) + ": " + src +
                               " left as it was, nothing written to " + dst;
        const std::string err = convert.err();
        EXPECT_EQ(err.rfind(expected, 0), 0u) << err;
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        EXPECT_TRUE(temp_files(dir.path()).empty()) << "temporary file left after " << signal_name(sig);
      }
      EXPECT_EQ(read_file(src), content) << "the source changed";
    }
    EXPECT_GT(interrupted, 0) << "every convert finished before " << signal_name(sig) << " reached it";
  }
  // Nothing holds the source any more: a writer gets it.
  image::OpenOptions w;
  w.writable = true;
  EXPECT_NO_THROW(image::open_image(src, w));
}

TEST(Interrupt, CommitAtRandomPoints) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::vector<uint8_t> content;
  std::string raw = make_source(dir, &content);
  std::mt19937 rng(7);
  for (int sig : {SIGINT, SIGTERM}) {
    int interrupted = 0;
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE(std::string(signal_name(sig)) + " round " + std::to_string(round));
      std::string base = dir.file("base.qcow2"), top = dir.file("top.qcow2");
      fs::remove(base);
      fs::remove(top);
      ASSERT_EQ(arche({"image", "create", "-f", "qcow2", base, "96M"}).exit_code, 0);
      // The overlay holds everything, compressed: reading it back costs inflate time.
      CommandResult made = qemu_img({"convert", "-q", "-c", "-O", "qcow2", "-B", base, "-F", "qcow2", raw, top});
      ASSERT_EQ(made.exit_code, 0) << made.err;
      ChildProcess commit({arche_binary(), "image", "commit", top});
      // Working once the base is open for writing.
      ASSERT_TRUE(wait_for([&] {
        return File::open(base, OpenMode::read_only).byte_locked_by_other(image::kLockHeldBase + 1) ||
               !commit.running();
      }));
      std::this_thread::sleep_for(random_delay(rng));
      commit.signal(sig);
      int rc = commit.wait();
      if (rc != 0) {
        ++interrupted;
        EXPECT_EQ(rc, 128 + sig) << commit.err();
        std::string expected =
            std::string("arche: interrupted by ") + signal_name(sig) + ": " + top + " left as it was";
        EXPECT_EQ(commit.err().rfind(expected, 0), 0u) << commit.err();
      }
      // Either way the guest sees the same disk through the overlay, and both files check clean.
      EXPECT_EQ(read_all_arche(top), content);
      EXPECT_TRUE(qemu_check_clean(base));
      EXPECT_TRUE(qemu_check_clean(top));
      EXPECT_TRUE(temp_files(dir.path()).empty());
    }
    EXPECT_GT(interrupted, 0) << "every commit finished before " << signal_name(sig) << " reached it";
  }
}

// In one process: the unwinding itself removes the temporary file and releases the
// image locks (no process exit to do it).
TEST(Interrupt, ConvertUnwindsCleanlyInProcess) {
  TempDir dir;
  std::string src = dir.file("src.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", src, "8M"}).exit_code, 0);
  ASSERT_EQ(arche({"image", "write", src, "0", "--pattern", "0x5a", "--length", "4M"}).exit_code, 0);
  interrupt::install_handlers();
  interrupt::reset();
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);  // recorded, not acted on: the work notices it
  ASSERT_EQ(interrupt::pending_signal(), SIGINT);
  image::ConvertOptions o;
  o.target.format = "qcow2";
  try {
    image::convert(src, dir.file("dst.qcow2"), o);
    ADD_FAILURE() << "convert ignored the interrupt";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::interrupted);
    EXPECT_STREQ(e.what(), "interrupted by SIGINT");
  }
  EXPECT_EQ(interrupt::exit_code(), 130);
  interrupt::reset();
  EXPECT_TRUE(temp_files(dir.path()).empty());
  EXPECT_FALSE(exists(dir.file("dst.qcow2")));
  File f = File::open(src, OpenMode::read_only);
  EXPECT_FALSE(f.byte_locked_by_other(image::kLockHeldBase)) << "the source is still locked";
  EXPECT_FALSE(f.byte_locked_by_other(image::kLockUnsharedBase + 1));
}

}  // namespace
}  // namespace arche::test
