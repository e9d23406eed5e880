// Helpers for the VMM tests: the test guest's path, KVM/root/TUN checks, and
// processes that run in the background (a VM) while the test talks to them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/common/test_util.h"

namespace arche::test {

std::string test_guest();  // tests/guest/guest.elf as built by CMake

// Skips (with the reason) only when the machine lacks what the test needs.
#define ARCHE_SKIP_UNLESS_KVM()                                                  \
  do {                                                                           \
    std::string why_;                                                            \
    if (!::arche::test::kvm_usable(&why_)) GTEST_SKIP() << "needs /dev/kvm: " << why_; \
  } while (0)
bool kvm_usable(std::string* why);
bool tun_usable(std::string* why);

// A child process with stdout/stderr going to files.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& out_file, const std::string& err_file);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  // Exit code, or -1 if it did not exit within timeout_ms.
  int wait(int timeout_ms);
  void kill_now();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

std::string read_text(const std::string& path);
// Waits until the file contains `needle`; false on timeout.
bool wait_for_text(const std::string& path, const std::string& needle, int timeout_ms);
// Sends raw bytes to a unix socket and returns what comes back until `lines`
// newlines arrived (or 10 s passed).
std::string unix_exchange(const std::string& path, const std::string& data, size_t lines);
// Number of occurrences of needle in haystack.
size_t count_of(const std::string& haystack, const std::string& needle);

}  // namespace arche::test
