// libFuzzer target for what the VMM parses from others: a VM.toml (also written
// by the OVA and P2V importers), the --disk and --net specs, and the control
// socket's request lines (hv/control.h: malformed input gets an error reply, never
// a crash). The first byte picks the parser; the rest is its input. Any input must
// end in success or an arche::Error. Seeds are written into an empty corpus.
#include <sys/mman.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "hv/config.h"
#include "hv/control.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;

namespace {

using arche::fuzz::write_seed;

enum Target : uint8_t { kToml, kDiskSpec, kNetSpec, kControl, kTargetCount };

// The control server is made once (it binds a socket in a directory of its own)
// and never started: its requests are handed to handle_line().
hv::ControlServer& control() {
  static std::unique_ptr<hv::ControlServer> server = [] {
    char dir[] = "/tmp/hv-fuzz-XXXXXX";
    if (!mkdtemp(dir)) std::abort();
    auto s = std::make_unique<hv::ControlServer>(std::string(dir) + "/control");
    s->add_command("status", [](const Json&) { return Json{{"state", "running"}}; });
    s->add_command("echo", [](const Json& request) { return request; });
    s->add_command("get", [](const Json& request) { return Json{{"name", request.at("name").get<std::string>()}}; });
    return s;
  }();
  return *server;
}

void run(uint8_t target, std::string_view text) {
  switch (target % kTargetCount) {
    case kToml: {
      static const int fd = memfd_create("vm-toml", MFD_CLOEXEC);
      if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        std::abort();
      hv::VmConfig c = hv::load_vm_config("/proc/self/fd/" + std::to_string(fd));
      c.validate();
      break;
    }
    case kDiskSpec: (void)hv::parse_disk_spec(std::string(text)); break;
    case kNetSpec: (void)hv::parse_net_spec(std::string(text)); break;
    case kControl:
      while (!text.empty()) {
        const size_t end = std::min(text.find('\n'), text.size());
        (void)control().handle_line(std::string(text.substr(0, end)));
        text.remove_prefix(std::min(end + 1, text.size()));
      }
      break;
  }
}

void write_seeds(const std::string& dir) {
  write_seed(dir, "toml", kToml,
             "name = \"fileserver\"\nmemory = \"2048M\"\ncpus = 2\nkernel = \"vmlinuz\"\ninitrd = \"initrd.img\"\n"
             "cmdline = \"console=ttyS0\"\nserial = \"file:console.log\"\ncontrol = \"vm.sock\"\ncpu = \"baseline\"\n"
             "[[disk]]\npath = \"disk.qcow2\"\nformat = \"qcow2\"\nreadonly = false\n"
             "[[disk]]\npath = \"data.raw\"\nreadonly = true\n"
             "[[net]]\ntap = \"tap0\"\nmac = \"52:54:00:12:34:56\"\nmodel = \"virtio\"\nnetwork = \"LAN\"\n");
  write_seed(dir, "disk", kDiskSpec, "disk.qcow2,format=qcow2,readonly");
  write_seed(dir, "net", kNetSpec, "tap=tap0,mac=52:54:00:12:34:56");
  write_seed(dir, "control", kControl,
             "{\"command\":\"status\"}\n{\"command\":\"echo\",\"x\":[1,2,{\"y\":null}]}\n{\"command\":\"get\",\"name\":"
             "\"a\"}\n"
             "{\"command\":\"nope\"}\n[1,2]\n{\"command\":\"get\"}\n");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (64u << 10)) return 0;  // targets.sh: -max_len
  try {
    run(data[0], std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  } catch (const Error&) {
  }
  return 0;
}
