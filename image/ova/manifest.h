// The manifest (.mf) of an OVF package: one digest per file, "SHA256(disk.vmdk)=
// 9f86...". Verifying it before converting anything turns a damaged or tampered
// package into one clear error instead of a silently different disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/file.h"

namespace arche::image::ova {

struct Digest {
  std::string algorithm;  // "SHA256", "SHA512", "SHA1"
  std::string hex;        // lower case
};

// Parses manifest text; `what` names it in errors. Keys are the file names.
std::map<std::string, Digest> parse_manifest(std::string_view text, const std::string& what);

// True when arche can compute this algorithm (SHA256, SHA512; not SHA1).
bool can_verify(const Digest& d);

// The digest of `length` bytes of `file` at `offset`, in lower-case hex.
std::string file_digest(const std::string& algorithm, const File& file, uint64_t offset, uint64_t length);
std::string text_digest(const std::string& algorithm, std::string_view text);

}  // namespace arche::image::ova
