// Reading the member list of a tar archive (an OVA package) without extracting it:
// POSIX ustar and GNU headers, pax extended headers (path, size) and GNU long
// names. Every header is checksummed and every member must lie inside the file,
// so a cut or damaged archive is one clear error.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/file.h"

namespace arche::image::ova {

struct TarMember {
  std::string name;
  uint64_t offset = 0;  // of the data in the archive
  uint64_t size = 0;
  bool regular = true;  // false: directory, link, device, ...
};

// Parses the headers of `file`; `what` names it in errors.
std::vector<TarMember> read_tar_index(const File& file, const std::string& what);

// The same, on an in-memory archive (the fuzz target uses it).
std::vector<TarMember> read_tar_index(std::span<const uint8_t> archive, const std::string& what);

}  // namespace arche::image::ova
