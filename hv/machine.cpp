#include "hv/machine.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "core/units.h"
#include "hv/boot/acpi.h"
#include "hv/boot/boot.h"
#include "hv/console.h"
#include "hv/control.h"
#include "hv/layout.h"
#include "image/format.h"

namespace arche::hv {

namespace {

// vCPU threads are kicked out of KVM_RUN with this signal (its handler does nothing;
// the interrupted ioctl returns EINTR).
constexpr int kick_signal = SIGUSR1;

void kick_handler(int) {}

void install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return
    ::sigaction(kick_signal, &sa, nullptr);
  });
}

const char* exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
    default: return "unexpected exit";
  }
}

const char* internal_error_name(uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
    default: return "unknown";
  }
}

}  // namespace

const char* to_string(StopKind kind) {
  switch (kind) {
    case StopKind::exit_port: return "exit-port";
    case StopKind::poweroff: return "poweroff";
    case StopKind::reset: return "reset";
    case StopKind::quit: return "quit";
    case StopKind::error: return "error";
  }
  return "?";
}

int exit_status(const StopReason& reason) {
  if (reason.kind == StopKind::error) throw Error(ErrorCategory::kvm, reason.message);
  return reason.kind == StopKind::exit_port ? reason.status : 0;
}

Machine::Machine(VmConfig config) : config_(std::move(config)), kvm_(Kvm::open()) {
  config_.validate();
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw_errno(errno, "vm: eventfd");
  stop_fd_.reset(fd);
  setup_vm();
  setup_devices();
  setup_boot();
  if (!config_.control.empty()) control_ = std::make_unique<ControlServer>(config_.control);
}

Machine::~Machine() {
  if (control_) control_->stop();
  for (auto* d : virtio_devices()) d->stop_worker();
  if (console_) console_->stop();
}

// ---- construction ---------------------------------------------------------------

void Machine::setup_vm() {
  vm_fd_.reset(kvm_ioctl(kvm_.fd(), KVM_CREATE_VM, 0UL, "KVM_CREATE_VM"));
  int vm = vm_fd_.get();
  kvm_ioctl(vm, KVM_SET_TSS_ADDR, static_cast<unsigned long>(layout::tss_addr), "KVM_SET_TSS_ADDR");
  uint64_t identity = layout::identity_map_addr;
  ::ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity);  // Intel only; harmless elsewhere
  kvm_ioctl(vm, KVM_CREATE_IRQCHIP, 0UL, "KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 in the kernel too (PIT channel 2 gate/output)
  kvm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");

  memory_ = std::make_unique<GuestMemory>(config_.memory);
  uint32_t slot = 0;
  for (const MemoryRegion& r : memory_->regions()) {
    kvm_userspace_memory_region m{};
    m.slot = slot++;
    m.guest_phys_addr = r.guest_address;
    m.memory_size = r.size;
    m.userspace_addr = reinterpret_cast<uint64_t>(memory_->host_base() + r.offset);
    kvm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m, "KVM_SET_USER_MEMORY_REGION");
  }
  cpuid_ = filter_cpuid(kvm_.supported_cpuid(), config_.cpu);
  msr_indices_ = kvm_.msr_index_list();
}

void Machine::setup_devices() {
  StopHandler stop = [this](const StopReason& r) { request_stop(r); };
  console_ = std::make_unique<Console>(config_.serial);
  serial_ = std::make_unique<Serial>(*this, layout::com1_irq, *console_);
  pio_.add(layout::com1, 8, serial_.get(), "serial");
  i8042_ = std::make_unique<I8042>(stop);
  pio_.add(layout::i8042_data, 5, i8042_.get(), "i8042");
  cmos_ = std::make_unique<CmosRtc>(config_.memory);
  pio_.add(layout::cmos, 2, cmos_.get(), "cmos");
  exit_port_ = std::make_unique<ExitPort>(stop);
  pio_.add(layout::exit_port, 1, exit_port_.get(), "exit port");
  pm_ = std::make_unique<AcpiPm>(stop);
  pio_.add(layout::pm1_event, 6, pm_.get(), "acpi pm");
  pci_ = std::make_unique<PciBus>();
  pio_.add(layout::pci_config_address, 8, pci_.get(), "pci");

  auto next_slot = [&] {
    unsigned s = static_cast<unsigned>(pci_->slots_used());
    return std::tuple{s, layout::pci_gsi_base + (s - 1) % 8, static_cast<uint32_t>(layout::pci_mmio_start + s * 0x10000)};
  };
  for (size_t i = 0; i < config_.disks.size(); ++i) {
    const DiskConfig& d = config_.disks[i];
    image::OpenOptions o;
    o.writable = !d.readonly;
    o.format = d.format;
    std::unique_ptr<image::BlockDevice> dev = image::open_image(d.path, o);
    auto [slot, gsi, bar] = next_slot();
    std::string serial = fmt::format("arche-{}-{}", config_.name, i).substr(0, 20);
    disks_.push_back(std::make_unique<VirtioBlk>(fmt::format("virtio-blk {} ({})", i, d.path), std::move(dev),
                                                 d.readonly, serial, *memory_, *this, gsi, bar));
    pci_->add(disks_.back().get());
  }
  for (size_t i = 0; i < config_.nets.size(); ++i) {
    const NetConfig& n = config_.nets[i];
    auto mac = n.mac.empty() ? default_mac(config_.name, static_cast<unsigned>(i)) : parse_mac(n.mac);
    auto [slot, gsi, bar] = next_slot();
    nets_.push_back(std::make_unique<VirtioNet>(fmt::format("virtio-net {} ({})", i, n.tap), n.tap, mac, *memory_,
                                                *this, gsi, bar));
    pci_->add(nets_.back().get());
  }
  auto [slot, gsi, bar] = next_slot();
  rng_ = std::make_unique<VirtioRng>("virtio-rng", *memory_, *this, gsi, bar);
  pci_->add(rng_.get());
}

void Machine::setup_boot() {
  AcpiLayout acpi;
  acpi.cpus = config_.cpus;
  for (unsigned s = 1; s < pci_->slots_used(); ++s) acpi.pci_slots.push_back(s);
  uint64_t rsdp = write_acpi_tables(*memory_, acpi);
  BootParams boot{config_.kernel, config_.initrd, config_.cmdline, rsdp};
  boot.decompress_on_host = config_.decompress_on_host;
  BootEntry entry = load_kernel(*memory_, boot);
  note("vm {}: {}", config_.name, entry.how);
  for (unsigned i = 0; i < config_.cpus; ++i) {
    auto v = std::make_unique<Vcpu>(vm_fd_.get(), kvm_, i);
    v->set_cpuid(cpuid_for_vcpu(cpuid_, i, config_.cpus));
    v->setup_msrs();
    v->setup_lapic();
    vcpus_.push_back(std::move(v));
  }
  // Only the boot CPU gets registers; the others wait (in KVM) for INIT-SIPI-SIPI.
  if (entry.protocol == BootProtocol::pvh) vcpus_[0]->setup_pvh(*memory_, entry.entry, entry.boot_info);
  else vcpus_[0]->setup_linux64(*memory_, entry.entry, entry.boot_info);
}

std::vector<VirtioPciDevice*> Machine::virtio_devices() const {
  std::vector<VirtioPciDevice*> out;
  for (const auto& d : disks_) out.push_back(d.get());
  for (const auto& n : nets_) out.push_back(n.get());
  if (rng_) out.push_back(rng_.get());
  return out;
}

// ---- running --------------------------------------------------------------------

StopReason Machine::run() {
  install_kick_handler();
  // Console output is best effort: a reader that went away (a closed pipe) must not
  // kill the VM with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM/SIGHUP become a clean "quit"; blocked here, so every thread
  // started below inherits the mask and only the signalfd sees them.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  UniqueFd sigfd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));

  started_ = std::chrono::steady_clock::now();
  if (control_) {
    control_->add_command("status", [this](const Json&) { return status(); });
    control_->add_command("pause", [this](const Json&) {
      pause();
      return Json{{"state", "paused"}};
    });
    control_->add_command("resume", [this](const Json&) {
      resume();
      return Json{{"state", "running"}};
    });
    control_->add_command("quit", [this](const Json&) {
      request_stop({StopKind::quit, 0, "stopped through the control socket"});
      return Json{{"state", "stopping"}};
    });
    control_->start();
  }
  console_->start_input(*serial_);
  for (auto* d : virtio_devices()) d->start_worker();
  {
    std::lock_guard lock(run_mutex_);
    running_vcpus_ = static_cast<unsigned>(vcpus_.size());
    for (size_t i = 0; i < vcpus_.size(); ++i) {
      threads_.emplace_back([this, i] { vcpu_loop(i); });
      thread_handles_.push_back(threads_.back().native_handle());
    }
  }

  while (!stop_requested_) {
    pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {sigfd.get(), POLLIN, 0}};
    if (::poll(fds, sigfd ? 2 : 1, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(sigfd.get(), &info, sizeof info) == sizeof info)
        request_stop({StopKind::quit, 0, fmt::format("stopped by signal {}", info.ssi_signo)});
    }
  }
  {
    std::lock_guard lock(run_mutex_);
    pause_requested_ = false;
  }
  run_cv_.notify_all();
  kick_all();
  for (auto& t : threads_) t.join();
  {
    std::lock_guard lock(run_mutex_);
    threads_.clear();
    thread_handles_.clear();
  }
  if (control_) control_->stop();
  for (auto* d : virtio_devices()) d->stop_worker();
  for (auto& d : disks_) {
    try {
      d->flush_disk();  // what the guest wrote is durable when run() returns
    } catch (const std::exception& e) {
      warn("{}: final flush failed: {}", d->name(), e.what());
    }
  }
  console_->stop();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  std::lock_guard lock(run_mutex_);
  return stop_reason_.value_or(StopReason{StopKind::quit, 0, ""});
}

void Machine::request_stop(const StopReason& reason) {
  {
    std::lock_guard lock(run_mutex_);
    if (!stop_reason_) stop_reason_ = reason;
    stop_requested_ = true;
  }
  run_cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, 8);
  kick_all();
}

void Machine::kick_all() {
  std::lock_guard lock(run_mutex_);
  for (size_t i = 0; i < thread_handles_.size(); ++i) {
    std::atomic_ref<uint8_t>(vcpus_[i]->run()->immediate_exit).store(1);
    pthread_kill(thread_handles_[i], kick_signal);
  }
}

void Machine::pause() {
  {
    std::unique_lock lock(run_mutex_);
    if (pause_requested_) return;
    pause_requested_ = true;
  }
  kick_all();
  {
    std::unique_lock lock(run_mutex_);
    run_cv_.wait(lock, [&] { return parked_ == running_vcpus_ || stop_requested_; });
  }
  // Then the device workers: after this nothing touches guest RAM or the disks.
  for (auto* d : virtio_devices()) d->pause_worker();
  // And the disks are flushed: while paused, the image files are consistent on
  // disk (a snapshot can open them, a new overlay can use the top as backing).
  for (auto& d : disks_) {
    try {
      d->flush_disk();
    } catch (const std::exception& e) {
      warn("{}: flush while pausing failed: {}", d->name(), e.what());
    }
  }
}

void Machine::resume() {
  {
    std::lock_guard lock(run_mutex_);
    if (!pause_requested_) return;
  }
  for (auto* d : virtio_devices()) d->resume_worker();
  {
    std::lock_guard lock(run_mutex_);
    pause_requested_ = false;
  }
  run_cv_.notify_all();
}

bool Machine::paused() const {
  std::lock_guard lock(run_mutex_);
  return pause_requested_ && parked_ == running_vcpus_;
}

void Machine::park(Vcpu& vcpu) {
  // Complete an I/O instruction KVM is still in the middle of, so the saved
  // registers point after it (KVM API: KVM_RUN with immediate_exit set).
  std::atomic_ref<uint8_t>(vcpu.run()->immediate_exit).store(1);
  ::ioctl(vcpu.fd(), KVM_RUN, 0);
  std::unique_lock lock(run_mutex_);
  ++parked_;
  run_cv_.notify_all();
  run_cv_.wait(lock, [&] { return !pause_requested_ || stop_requested_; });
  --parked_;
}

void Machine::vcpu_loop(size_t index) {
  Vcpu& vcpu = *vcpus_[index];
  kvm_run* run = vcpu.run();
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, kick_signal);
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
  try {
    for (;;) {
      if (stop_requested_) break;
      if (pause_requested_) {
        park(vcpu);
        continue;
      }
      // Clear, then re-check: a kick between the two leaves immediate_exit set or
      // the flag visible, so it is never lost (see kick_all).
      std::atomic_ref<uint8_t>(run->immediate_exit).store(0);
      if (stop_requested_ || pause_requested_) continue;
      if (::ioctl(vcpu.fd(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        request_stop({StopKind::error, 0, describe_failure(vcpu, fmt::format("KVM_RUN failed: {}", std::strerror(errno)))});
        break;
      }
      if (!handle_exit(vcpu)) break;
    }
  } catch (const std::exception& e) {
    request_stop({StopKind::error, 0, fmt::format("vcpu {}: {}", vcpu.id(), e.what())});
  }
  std::lock_guard lock(run_mutex_);
  --running_vcpus_;
  run_cv_.notify_all();
}

bool Machine::handle_exit(Vcpu& vcpu) {
  kvm_run* run = vcpu.run();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: handle_io(run); return true;
    case KVM_EXIT_MMIO: handle_mmio(run); return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_HLT:  // only without an in-kernel LAPIC; keep going
    case KVM_EXIT_IRQ_WINDOW_OPEN: return true;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: request_stop({StopKind::poweroff, 0, "the guest powered off"}); return false;
        case KVM_SYSTEM_EVENT_RESET: request_stop({StopKind::reset, 0, "the guest reset the machine"}); return false;
        default:
          request_stop({StopKind::error, 0, describe_failure(vcpu, fmt::format("system event {} (guest crash)", run->system_event.type))});
          return false;
      }
    case KVM_EXIT_SHUTDOWN:
      request_stop({StopKind::error, 0, describe_failure(vcpu, "the guest triple-faulted (KVM_EXIT_SHUTDOWN)")});
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::string what = fmt::format("KVM gave up: KVM_EXIT_INTERNAL_ERROR, suberror {} ({})", run->internal.suberror,
                                     internal_error_name(run->internal.suberror));
      for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i)
        what += fmt::format("{}{:#x}", i ? " " : "; data ", run->internal.data[i]);
      request_stop({StopKind::error, 0, describe_failure(vcpu, what)});
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY:
      request_stop({StopKind::error, 0,
                    describe_failure(vcpu, fmt::format("KVM_EXIT_FAIL_ENTRY (hardware entry failure reason {:#x})",
                                                       run->fail_entry.hardware_entry_failure_reason))});
      return false;
    default:
      request_stop({StopKind::error, 0,
                    describe_failure(vcpu, fmt::format("{} ({})", exit_reason_name(run->exit_reason), run->exit_reason))});
      return false;
  }
}

std::string Machine::describe_failure(Vcpu& vcpu, const std::string& what) {
  std::string out = fmt::format("vcpu {}: {}; {}", vcpu.id(), what, vcpu.describe());
  std::vector<uint8_t> bytes = vcpu.instruction_bytes(*memory_);
  out += "; instruction bytes at RIP:";
  if (bytes.empty()) out += " (not mapped)";
  for (uint8_t b : bytes) out += fmt::format(" {:02x}", b);
  return out;
}

void Machine::handle_io(kvm_run* run) {
  uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> d(data + i * run->io.size, run->io.size);
    if (run->io.direction == KVM_EXIT_IO_OUT) pio_.write(run->io.port, d);
    else pio_.read(run->io.port, d);
  }
}

void Machine::handle_mmio(kvm_run* run) {
  std::span<uint8_t> d(run->mmio.data, std::min<uint32_t>(run->mmio.len, 8));
  if (run->mmio.is_write) pci_->mmio_write(run->mmio.phys_addr, d);
  else if (!pci_->mmio_read(run->mmio.phys_addr, d)) std::memset(d.data(), 0xff, d.size());
}

void Machine::set_irq_line(unsigned gsi, bool level) {
  kvm_irq_level l{};
  l.irq = gsi;
  l.level = level ? 1 : 0;
  if (::ioctl(vm_fd_.get(), KVM_IRQ_LINE, &l) < 0) debug("KVM_IRQ_LINE {} failed: {}", gsi, std::strerror(errno));
}

// ---- status and state -----------------------------------------------------------

Json Machine::status() const {
  Json j{{"name", config_.name},
         {"state", stop_requested_ ? "stopping" : paused() ? "paused" : "running"},
         {"pid", static_cast<int64_t>(::getpid())},
         {"cpus", config_.cpus},
         {"memory", config_.memory},
         {"cpu_model", to_string(config_.cpu)},
         {"uptime_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()}};
  Json disks = Json::array();
  for (const auto& d : disks_) {
    VirtioBlkState s = d->state();
    disks.push_back(Json{{"file", s.disk_file}, {"format", s.disk_format}, {"readonly", s.readonly},
                         {"requests", d->requests_completed()}, {"broken", s.transport.broken}});
  }
  j["disks"] = disks;
  Json nets = Json::array();
  for (const auto& n : nets_)
    nets.push_back(Json{{"tap", n->state().tap}, {"frames_sent", n->frames_sent()}, {"frames_received", n->frames_received()},
                        {"broken", n->broken()}});
  j["nets"] = nets;
  return j;
}

MachineState Machine::save_state() {
  if (!paused()) fail(ErrorCategory::usage, "vm: the VM must be paused to save its state");
  MachineState s;
  s.cpu_model = to_string(config_.cpu);
  s.memory = config_.memory;
  int khz = ::ioctl(vcpus_[0]->fd(), KVM_GET_TSC_KHZ, 0);
  s.tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;
  for (auto& v : vcpus_) s.vcpus.push_back(v->save_state(msr_indices_));
  int vm = vm_fd_.get();
  s.irqchip.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.irqchip.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.irqchip.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  kvm_ioctl(vm, KVM_GET_IRQCHIP, &s.irqchip.pic_master, "KVM_GET_IRQCHIP");
  kvm_ioctl(vm, KVM_GET_IRQCHIP, &s.irqchip.pic_slave, "KVM_GET_IRQCHIP");
  kvm_ioctl(vm, KVM_GET_IRQCHIP, &s.irqchip.ioapic, "KVM_GET_IRQCHIP");
  kvm_ioctl(vm, KVM_GET_PIT2, &s.irqchip.pit, "KVM_GET_PIT2");
  kvm_ioctl(vm, KVM_GET_CLOCK, &s.irqchip.clock, "KVM_GET_CLOCK");
  s.serial = serial_->state();
  s.cmos = cmos_->state();
  s.pm = pm_->state();
  for (auto& d : disks_) s.disks.push_back(d->state());
  for (auto& n : nets_) s.nets.push_back(n->state());
  s.rng = rng_->state();
  return s;
}

std::unique_ptr<image::BlockDevice> Machine::replace_disk(size_t index, std::unique_ptr<image::BlockDevice> disk) {
  if (!paused()) fail(ErrorCategory::usage, "vm: pause the VM before replacing a disk");
  if (index >= disks_.size()) fail(ErrorCategory::usage, "vm: no disk {}", index);
  return disks_[index]->replace_disk(std::move(disk));
}

}  // namespace arche::hv
