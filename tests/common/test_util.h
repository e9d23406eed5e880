// Helpers shared by all test suites: temporary directories, running programs
// (arche itself, qemu-img, mkfs) without a shell, deterministic random data.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace arche::test {

// A fresh directory, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH) with the arguments, capturing stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, const std::string& stdin_data = "");
// Runs the arche binary built with these tests.
CommandResult arche(const std::vector<std::string>& args);
std::string arche_binary();

bool have_program(const std::string& name);

std::vector<uint8_t> random_bytes(size_t size, uint64_t seed);
void write_file(const std::string& path, const std::vector<uint8_t>& data);
std::vector<uint8_t> read_file(const std::string& path);

bool is_root();

// Mounts an image on a loop device for as long as it lives (mount picks a free
// loop device; umount with autoclear releases it).
class LoopMount {
 public:
  LoopMount(const std::string& image, const std::string& dir, const std::string& options);
  ~LoopMount();
  LoopMount(const LoopMount&) = delete;
  LoopMount& operator=(const LoopMount&) = delete;
  void unmount();

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Fails the test (not skips) when a program the setup script installs is missing:
// a green run must not hide a missing install step.
#define ARCHE_REQUIRE_PROGRAM(name) \
  ASSERT_TRUE(::arche::test::have_program(name)) << name << " is missing: run scripts/install-deps.sh"

#define ARCHE_SKIP_UNLESS_ROOT() \
  if (!::arche::test::is_root()) GTEST_SKIP() << "needs root (loop devices / mount)"

}  // namespace arche::test
