// Helpers for image tests: qemu-img as the referee, whole-image reads.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "tests/common/test_util.h"

namespace arche::test {

// Runs qemu-img / qemu-io with the arguments; returns the result.
CommandResult qemu_img(const std::vector<std::string>& args);
CommandResult qemu_io(const std::string& image, const std::string& format, const std::vector<std::string>& commands);

// Whole virtual disk content as arche reads it.
std::vector<uint8_t> read_all(image::BlockDevice& dev);
// `format` empty: probed.
std::vector<uint8_t> read_all_arche(const std::string& path, const std::string& format = "");
// Whole virtual disk content as qemu-img reads it (convert -O raw).
std::vector<uint8_t> read_all_qemu(const std::string& path, const std::string& dir);

// qemu-img check succeeded with neither corruptions nor leaks.
::testing::AssertionResult qemu_check_clean(const std::string& path);

// A program running beside the test (qemu-nbd holding an image, an arche convert to
// interrupt). Its output goes to files in its own temporary directory, so it never
// blocks on a full pipe; the destructor kills it if it still runs.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for the end: the exit code, or 128 + the signal that ended it.
  int wait();
  std::string out() const;
  std::string err() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// Calls `done` every 10 ms until it returns true (true) or `seconds` pass (false).
bool wait_for(const std::function<bool()>& done, double seconds = 60);

}  // namespace arche::test
