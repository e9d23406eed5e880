// Import of an OVF package (an .ova tar archive, or an .ovf file with its disks
// beside it): every disk a virtual system uses is converted into DIR in a chosen
// format, and what the OVF says about the machine (CPUs, memory, disks, network
// adapters) is written to DIR/<name>.toml, the VM configuration arche's VMM reads.
//
// All or nothing: disks are converted under temporary names and appear under
// their final names, together with the configuration, only when every disk has
// been converted. A failed import leaves no disk that looks complete.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace arche::image::ova {

struct ImportOptions {
  std::string format = "qcow2";               // format of the imported disks
  std::map<std::string, std::string> options;  // its -o options
  bool overwrite = false;                      // replace existing files in DIR
  unsigned threads = 0;                        // conversion threads (0: one per core)
  bool durable = true;                         // fsync disks and config before they appear
};

struct ImportedDisk {
  std::string path;  // in DIR
  std::string format;
  uint64_t virtual_size = 0;
};

struct ImportedMachine {
  std::string name;
  std::string config;  // DIR/<name>.toml
  uint64_t cpus = 0;
  uint64_t memory = 0;
  std::vector<ImportedDisk> disks;
  size_t nics = 0;
};

struct ImportResult {
  std::vector<ImportedMachine> machines;
  uint64_t bytes_read = 0;
};

ImportResult import_package(const std::string& package, const std::string& dir, const ImportOptions& options);

// "2048M", "512K", or plain bytes: how the VM configuration writes sizes.
std::string size_string(uint64_t bytes);

}  // namespace arche::image::ova
