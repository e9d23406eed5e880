// A running VM: KVM VM + guest RAM + vCPU threads + devices. Build it from a
// VmConfig, call run() and get back why it stopped. pause()/resume() park every
// vCPU and device worker and flush the disks (the snapshot engine's entry point: while paused, every
// piece of state is readable through save_state() and a disk can be swapped with
// replace_disk()).
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/file.h"
#include "core/json.h"
#include "hv/bus.h"
#include "hv/config.h"
#include "hv/cpuid.h"
#include "hv/devices/legacy.h"
#include "hv/devices/pci.h"
#include "hv/devices/serial.h"
#include "hv/kvm.h"
#include "hv/memory.h"
#include "hv/stop.h"
#include "hv/vcpu.h"
#include "hv/virtio/blk.h"
#include "hv/virtio/net.h"

namespace arche::hv {

class Console;
class ControlServer;

// The in-kernel interrupt controllers and timers.
struct IrqchipState {
  static constexpr uint32_t version = 1;
  kvm_irqchip pic_master{}, pic_slave{}, ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

// Everything a full snapshot needs besides guest RAM (GuestMemory::memfd()).
struct MachineState {
  static constexpr uint32_t version = 1;
  std::string cpu_model;  // "baseline" or "host"
  int baseline_version = baseline_model_version;
  uint32_t tsc_khz = 0;
  uint64_t memory = 0;
  std::vector<VcpuState> vcpus;
  IrqchipState irqchip;
  SerialState serial;
  CmosState cmos;
  AcpiPmState pm;
  std::vector<VirtioBlkState> disks;
  std::vector<VirtioNetState> nets;
  VirtioState rng;
};

class Machine : public InterruptSink {
 public:
  explicit Machine(VmConfig config);
  ~Machine() override;
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Runs the guest until it stops. SIGINT/SIGTERM/SIGHUP stop it as "quit".
  StopReason run();

  void pause();
  void resume();
  bool paused() const;
  // Asks the machine to stop (any thread; the first reason wins).
  void request_stop(const StopReason& reason);

  Json status() const;
  // Only while paused.
  MachineState save_state();
  std::unique_ptr<image::BlockDevice> replace_disk(size_t index, std::unique_ptr<image::BlockDevice> disk);

  const VmConfig& config() const { return config_; }
  const GuestMemory& memory() const { return *memory_; }
  size_t disk_count() const { return disks_.size(); }
  VirtioBlk& disk(size_t i) { return *disks_.at(i); }

  void set_irq_line(unsigned gsi, bool level) override;

 private:
  void setup_vm();
  void setup_devices();
  void setup_boot();
  void vcpu_loop(size_t index);
  bool handle_exit(Vcpu& vcpu);
  void handle_io(kvm_run* run);
  void handle_mmio(kvm_run* run);
  void kick_all();
  void park(Vcpu& vcpu);
  std::string describe_failure(Vcpu& vcpu, const std::string& what);
  std::vector<VirtioPciDevice*> virtio_devices() const;

  VmConfig config_;
  Kvm kvm_;
  UniqueFd vm_fd_;
  std::unique_ptr<GuestMemory> memory_;
  CpuidTable cpuid_;
  std::vector<uint32_t> msr_indices_;

  Bus pio_{"I/O port"};
  std::unique_ptr<Console> console_;
  std::unique_ptr<Serial> serial_;
  std::unique_ptr<I8042> i8042_;
  std::unique_ptr<CmosRtc> cmos_;
  std::unique_ptr<ExitPort> exit_port_;
  std::unique_ptr<AcpiPm> pm_;
  std::unique_ptr<PciBus> pci_;
  std::vector<std::unique_ptr<VirtioBlk>> disks_;
  std::vector<std::unique_ptr<VirtioNet>> nets_;
  std::unique_ptr<VirtioRng> rng_;
  std::unique_ptr<ControlServer> control_;

  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::vector<std::thread> threads_;
  std::vector<pthread_t> thread_handles_;

  mutable std::mutex run_mutex_;
  std::condition_variable run_cv_;
  std::atomic<bool> pause_requested_{false}, stop_requested_{false};
  unsigned parked_ = 0, running_vcpus_ = 0;
  std::optional<StopReason> stop_reason_;
  UniqueFd stop_fd_;
  std::chrono::steady_clock::time_point started_;
  std::mutex irq_mutex_;
};

// The exit status of `arche vm run` for a stop reason (errors are thrown instead).
int exit_status(const StopReason& reason);

}  // namespace arche::hv
