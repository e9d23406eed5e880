// A VM's settings, from the command line or a VM.toml (the same keys). The TOML
// schema is shared with the OVA/P2V importers:
//
//   name = "fileserver"          memory = "2048M"      cpus = 2
//   kernel = "vmlinuz"           initrd = "initrd.img" cmdline = "console=ttyS0"
//   serial = "stdio" | "file:PATH" | "unix:PATH"       control = "PATH"
//   cpu = "baseline" | "host"
//   [[disk]]  path = "disk.qcow2" (relative to the .toml)  format = "qcow2"  readonly = false
//   [[net]]   tap = "tap0"  mac = "52:54:00:12:34:56"  model = "virtio"  network = "LAN"
//
// Unknown keys are errors that name the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hv/cpuid.h"

namespace arche::hv {

struct DiskConfig {
  std::string path;
  std::string format;  // empty: probe
  bool readonly = false;
};

struct NetConfig {
  std::string tap;
  std::string mac;             // empty: derived from the VM name
  std::string model = "virtio";
  std::string network;         // informational (what the importer saw)
};

struct VmConfig {
  std::string name = "vm";
  uint64_t memory = 256ull << 20;
  unsigned cpus = 1;
  std::string kernel, initrd, cmdline;
  std::string serial = "stdio";
  std::string control;  // unix socket path; empty: none
  CpuModel cpu = CpuModel::baseline;
  std::vector<DiskConfig> disks;
  std::vector<NetConfig> nets;
  // bzImage kernels: decompress on the host (command line only, not in VM.toml).
  bool decompress_on_host = true;

  // Checks ranges and combinations; throws usage errors.
  void validate() const;
};

VmConfig load_vm_config(const std::string& toml_path);
// "FILE[,format=F][,readonly]" (the --disk syntax).
DiskConfig parse_disk_spec(const std::string& spec);
// "tap=NAME[,mac=MAC]" (the --net syntax).
NetConfig parse_net_spec(const std::string& spec);

}  // namespace arche::hv
