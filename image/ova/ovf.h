// The parts of an OVF descriptor (DMTF DSP0243, versions 1.x and 2.x) that an
// import needs: the referenced files, the disks, and per virtual system its name,
// CPUs, memory, disk drives and network adapters. Elements and attributes are
// matched by local name, so any namespace prefix works (VMware, VirtualBox and
// hand-written OVFs use different ones).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace arche::image::ova {

struct OvfFile {
  std::string id;
  std::string href;
  std::optional<uint64_t> size;
  std::string compression;  // "" or "identity": none; "gzip": unsupported
  uint64_t chunk_size = 0;  // split files: unsupported
};

struct OvfDisk {
  std::string id;        // ovf:diskId
  std::string file_ref;  // ovf:fileRef ("" for a blank disk)
  uint64_t capacity = 0;  // bytes
  std::string format;     // the ovf:format URI
};

struct OvfNic {
  std::string model;    // rasd:ResourceSubType as given (E1000, VmxNet3, ...)
  std::string mac;      // normalized aa:bb:cc:dd:ee:ff, or empty
  std::string network;  // rasd:Connection
};

struct OvfSystem {
  std::string id;
  std::string name;
  uint64_t cpus = 1;
  uint64_t memory = 0;                // bytes, 0 if not given
  std::vector<std::string> disk_ids;  // in the order of the hardware section
  std::vector<std::string> file_disks;  // drives naming a file directly (ovf:/file/ID)
  std::vector<OvfNic> nics;
};

struct OvfEnvelope {
  std::vector<OvfFile> files;
  std::vector<OvfDisk> disks;
  std::vector<OvfSystem> systems;

  const OvfFile* file(std::string_view id) const;
  const OvfDisk* disk(std::string_view id) const;
};

// Throws a format error naming `what` on XML that is not an OVF envelope.
OvfEnvelope parse_ovf(std::string_view xml, const std::string& what);

// "byte * 2^20" -> 1048576; also "byte", "byte * 10^3", "KiloBytes", "MegaBytes",
// "GigaBytes" and "MB"/"GB". Throws a format error on anything else.
uint64_t allocation_unit_bytes(std::string_view units, const std::string& what);

// "00-50-56-AB-CD-EF" or "0050.56ab.cdef" -> "00:50:56:ab:cd:ef"; "" if not a MAC.
std::string normalize_mac(std::string_view text);

}  // namespace arche::image::ova
