// `arche vm ...`: run a VM in the foreground, start one detached, and talk to a
// running one through its control socket (status, pause, resume, stop).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "hv/config.h"
#include "hv/control.h"
#include "hv/machine.h"

namespace arche::cli {

namespace {

namespace fs = boost::filesystem;

// Where detached VMs keep their control socket, console log and pid:
// --run-dir, else $ARCHE_RUN_DIR, else /run/arche (root) or $XDG_RUNTIME_DIR/arche.
std::string run_dir(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* e = std::getenv("ARCHE_RUN_DIR"); e && *e) return e;
  if (::geteuid() == 0) return "/run/arche";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/arche";
  return "/tmp/arche-" + std::to_string(::geteuid());
}

std::string ensure_run_dir(const std::string& option) {
  std::string dir = run_dir(option);
  boost::system::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorCategory::io, "vm: cannot create run directory {}: {}", dir, ec.message());
  ::chmod(dir.c_str(), 0700);
  return dir;
}

std::string socket_for(const std::string& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) fail(ErrorCategory::usage, "vm: bad VM name '{}'", name);
  return dir + "/" + name + ".sock";
}

struct RunArgs {
  std::string config_file, name, kernel, initrd, cmdline, memory, serial, control, cpu, run_dir;
  unsigned cpus = 0;
  std::vector<std::string> disks, nets;
  bool cmdline_given = false, guest_decompress = false;
};

void add_machine_options(CLI::App* cmd, RunArgs& a) {
  cmd->add_option("--name", a.name, "Name of the VM (default: from VM.toml, or 'vm')");
  cmd->add_option("--kernel", a.kernel, "Kernel: a Linux bzImage or a PVH ELF");
  cmd->add_option("--initrd", a.initrd, "Initial ramdisk");
  cmd->add_option("--cmdline", a.cmdline, "Kernel command line")->each([&a](const std::string&) { a.cmdline_given = true; });
  cmd->add_option("--memory", a.memory, "Guest RAM, e.g. 256M or 2G (default 256M)");
  cmd->add_option("--cpus", a.cpus, "Number of vCPUs (default 1)");
  cmd->add_option("--disk", a.disks, "Disk image: FILE[,format=F][,readonly] (repeatable)");
  cmd->add_option("--net", a.nets, "Network: tap=NAME[,mac=MAC] (repeatable)");
  cmd->add_option("--serial", a.serial, "Console: stdio, file:PATH, unix:PATH or none (default stdio)");
  cmd->add_option("--control", a.control, "Control socket path (JSON lines)");
  cmd->add_option("--cpu", a.cpu, "CPU model: baseline (portable, default) or host");
  cmd->add_flag("--guest-decompress", a.guest_decompress,
                "bzImage: let the kernel decompress itself in the guest (default: arche decompresses it on the host)");
}

// VM.toml first, then the command line on top.
hv::VmConfig build_config(const RunArgs& a) {
  hv::VmConfig c;
  if (!a.config_file.empty()) c = hv::load_vm_config(a.config_file);
  if (!a.name.empty()) c.name = a.name;
  if (!a.kernel.empty()) c.kernel = a.kernel;
  if (!a.initrd.empty()) c.initrd = a.initrd;
  if (a.cmdline_given) c.cmdline = a.cmdline;
  if (!a.memory.empty()) c.memory = parse_size(a.memory, "memory");
  if (a.cpus) c.cpus = a.cpus;
  if (!a.serial.empty()) c.serial = a.serial;
  if (!a.control.empty()) c.control = a.control;
  if (!a.cpu.empty()) c.cpu = hv::parse_cpu_model(a.cpu);
  for (const auto& d : a.disks) c.disks.push_back(hv::parse_disk_spec(d));
  for (const auto& n : a.nets) c.nets.push_back(hv::parse_net_spec(n));
  if (a.guest_decompress) c.decompress_on_host = false;
  c.validate();
  return c;
}

int run_machine(const hv::VmConfig& config) {
  hv::Machine machine(config);
  hv::StopReason why = machine.run();
  if (!why.message.empty()) note("vm {}: {}", config.name, why.message);
  return hv::exit_status(why);  // throws for errors: one line on stderr, exit code of kvm
}

void add_run(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("run", "Run a VM in the foreground (from options or VM.toml); exits with the guest's status");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("config", a->config_file, "VM.toml with the settings (options override it)");
  add_machine_options(cmd, *a);
  cmd->callback([&ctx, a] { ctx.exit_code = run_machine(build_config(*a)); });
}

// Detached start: double fork, new session; the child reports through a pipe once
// the machine is built and its control socket listens (or why it failed).
void add_start(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("start", "Start a VM in the background with a control socket");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("config", a->config_file, "VM.toml")->required();
  add_machine_options(cmd, *a);
  cmd->add_option("--run-dir", a->run_dir, "Where control sockets and console logs live (default /run/arche)");
  cmd->callback([&ctx, a] {
    hv::VmConfig config = build_config(*a);
    std::string dir = ensure_run_dir(a->run_dir);
    if (config.control.empty()) config.control = socket_for(dir, config.name);
    if (config.serial == "stdio") config.serial = "file:" + dir + "/" + config.name + ".console";
    std::string log = dir + "/" + config.name + ".log";
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) throw_errno(errno, "vm: pipe");
    pid_t child = ::fork();
    if (child < 0) throw_errno(errno, "vm: fork");
    if (child == 0) {
      ::close(pipefd[0]);
      ::setsid();
      pid_t grandchild = ::fork();
      if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
      int devnull = ::open("/dev/null", O_RDWR);
      int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(logfd >= 0 ? logfd : devnull, 2);
      int status = 1;
      try {
        hv::Machine machine(config);
        std::string ok = "ok " + std::to_string(::getpid()) + "\n";
        (void)!::write(pipefd[1], ok.data(), ok.size());
        ::close(pipefd[1]);
        hv::StopReason why = machine.run();
        std::fprintf(stderr, "arche: vm %s stopped (%s) %s\n", config.name.c_str(), hv::to_string(why.kind),
                     why.message.c_str());
        status = why.kind == hv::StopKind::error ? exit_code(ErrorCategory::kvm) : hv::exit_status(why);
      } catch (const std::exception& e) {
        std::string msg = std::string("error ") + e.what() + "\n";
        (void)!::write(pipefd[1], msg.data(), msg.size());
        std::fprintf(stderr, "arche: %s\n", e.what());
      }
      ::_exit(status);
    }
    ::close(pipefd[1]);
    int wstatus;
    ::waitpid(child, &wstatus, 0);
    std::string reply;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) {
      reply.append(buf, static_cast<size_t>(n));
      if (reply.find('\n') != std::string::npos) break;
    }
    ::close(pipefd[0]);
    if (reply.rfind("ok ", 0) != 0) {
      std::string why = reply.rfind("error ", 0) == 0 ? reply.substr(6) : "the VM process died while starting";
      while (!why.empty() && why.back() == '\n') why.pop_back();
      fail(ErrorCategory::kvm, "vm {}: {} (log: {})", config.name, why, log);
    }
    long pid = std::strtol(reply.c_str() + 3, nullptr, 10);
    if (ctx.json) {
      print_json(Json{{"name", config.name}, {"pid", pid}, {"control", config.control}, {"serial", config.serial}, {"log", log}});
    } else {
      say(ctx, fmt::format("vm {} started (pid {}); control socket {}", config.name, pid, config.control));
    }
  });
}

struct NameArgs {
  std::string name, run_dir;
  int timeout = 10;
};

Json send(const NameArgs& a, const std::string& command) {
  std::string path = a.name.find('/') != std::string::npos ? a.name : socket_for(run_dir(a.run_dir), a.name);
  Json reply = hv::control_request(path, Json{{"command", command}}, a.timeout * 1000);
  if (!reply.value("ok", false))
    fail(ErrorCategory::kvm, "vm {}: {}", a.name, reply.value("error", std::string("request failed")));
  return reply;
}

CLI::App* add_name_command(CLI::App& group, const char* name, const char* help, std::shared_ptr<NameArgs> a) {
  auto* cmd = group.add_subcommand(name, help);
  cmd->add_option("name", a->name, "VM name (or the path of its control socket)")->required();
  cmd->add_option("--run-dir", a->run_dir, "Where control sockets live (default /run/arche)");
  return cmd;
}

void add_control_commands(CLI::App& group, Context& ctx) {
  {
    auto a = std::make_shared<NameArgs>();
    auto* cmd = add_name_command(group, "status", "Show the state of a running VM", a);
    add_json_flag(cmd, ctx);
    cmd->callback([&ctx, a] {
      Json r = send(*a, "status");
      r.erase("ok");
      if (ctx.json) {
        print_json(r);
        return;
      }
      std::string out = fmt::format("name: {}\nstate: {}\npid: {}\ncpus: {} ({})\nmemory: {}\nuptime: {:.1f} s\n",
                                    r.value("name", ""), r.value("state", ""), r.value("pid", 0), r.value("cpus", 0),
                                    r.value("cpu_model", ""), format_size(r.value("memory", uint64_t(0))),
                                    r.value("uptime_seconds", 0.0));
      for (const auto& d : r["disks"])
        out += fmt::format("disk: {} ({}{}) {} requests{}\n", d.value("file", ""), d.value("format", ""),
                           d.value("readonly", false) ? ", read-only" : "", d.value("requests", 0),
                           d.value("broken", false) ? ", NEEDS RESET" : "");
      for (const auto& n : r["nets"])
        out += fmt::format("net: tap {} sent {} received {}\n", n.value("tap", ""), n.value("frames_sent", 0),
                           n.value("frames_received", 0));
      std::fputs(out.c_str(), stdout);
    });
  }
  for (auto [verb, command, help] : {std::tuple{"pause", "pause", "Pause every vCPU and device of a running VM"},
                                     std::tuple{"resume", "resume", "Resume a paused VM"}}) {
    auto a = std::make_shared<NameArgs>();
    auto* cmd = add_name_command(group, verb, help, a);
    std::string c = command, v = verb;
    cmd->callback([&ctx, a, c, v] {
      Json r = send(*a, c);
      say(ctx, fmt::format("vm {}: {}", a->name, r.value("state", v)));
    });
  }
  {
    auto a = std::make_shared<NameArgs>();
    auto* cmd = add_name_command(group, "stop", "Stop a running VM (like pulling the plug, disks are flushed)", a);
    cmd->add_option("--timeout", a->timeout, "Seconds to wait for the VM to exit (default 10)");
    cmd->callback([&ctx, a] {
      Json st = send(*a, "status");
      long pid = st.value("pid", 0L);
      send(*a, "quit");
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a->timeout);
      while (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) {
        if (std::chrono::steady_clock::now() > deadline)
          fail(ErrorCategory::busy, "vm {}: still running after {} s (pid {})", a->name, a->timeout, pid);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      say(ctx, fmt::format("vm {}: stopped", a->name));
    });
  }
}

}  // namespace

void register_vm_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("vm", "Run and control virtual machines (KVM)");
  group->require_subcommand(1);
  add_run(*group, ctx);
  add_start(*group, ctx);
  add_control_commands(*group, ctx);
}

}  // namespace arche::cli
