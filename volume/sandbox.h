// Untrusted disks are parsed in a child process that can do nothing but talk to
// arche. A backed-up VM's disk was written by that VM: a crafted partition table,
// LVM metadata or file system may exploit a bug in a parser (ours, libext2fs,
// libntfs-3g). So the parsers run in a child that
//
//   - is forked before the parent opens anything secret (start() it first) and
//     keeps no file descriptor but its end of a socketpair (stdin/out/err are
//     /dev/null);
//   - drops to nobody:nogroup when started as root, sets no_new_privs, is not
//     dumpable (no core file with the parent's memory) and has a memory limit;
//   - runs under a seccomp allow-list (libseccomp): memory management, futexes,
//     clocks, send/recv on its socket and exit — no open/openat, no socket,
//     connect, exec, fork or kill of others. Anything else kills it (SIGSYS);
//   - sees the disks only through block reads it asks the parent for.
//
// The parent asks for volumes, listings, stats, file data and used ranges; see
// sandbox_protocol.h for the wire format. Whatever the child does — crash, get
// killed by the filter, hang (no message for `timeout_seconds`), send garbage —
// the parent stops it and every later call fails with one error that says so.
// The Tree and Filesystems it returns are the same interfaces as explore()'s, so
// callers are written once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/units.h"
#include "volume/tree.h"

namespace arche::volume {

struct SandboxOptions {
  // No message from the child (answer or block read) for this long: it is stopped.
  unsigned timeout_seconds = 300;
  // One request taking longer than this, block reads or not, is stopped too: a
  // reader caught in a loop that keeps reading would otherwise never end.
  unsigned request_limit_seconds = 3600;
  uint64_t memory_limit = 8 * GiB;  // RLIMIT_AS of the child
  // Tests only: runs inside the child (under the filter) with the payload of a
  // kTest request, and with "opened LABEL" each time the child has opened a file
  // system. Production code leaves it empty; the child then refuses kTest.
  std::function<void(std::string_view)> test_hook;
};

class Sandbox {
 public:
  // Forks the child now. Call it before the process holds secrets (repository
  // keys) and before it starts threads: the child is a copy of this process.
  static std::unique_ptr<Sandbox> start(SandboxOptions options = {});
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Hands the disks to the child, which explores them (tree.h). The parent serves
  // the child's block reads from these devices for the life of the returned tree.
  // Once per sandbox.
  std::unique_ptr<Tree> explore(std::vector<Disk> disks);

  // Tests: sends a kTest request with `payload` and waits for the answer.
  void test_request(std::string_view payload);

  struct Channel;  // shared by the sandbox and the trees it returns

 private:
  explicit Sandbox(std::shared_ptr<Channel> channel) : channel_(std::move(channel)) {}
  std::shared_ptr<Channel> channel_;
};

// start() and explore() in one call, for callers that hold no secrets.
std::unique_ptr<Tree> explore_sandboxed(std::vector<Disk> disks, SandboxOptions options = {});

}  // namespace arche::volume
