#include "image/ova/tar_index.h"

#include <cstring>
#include <functional>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::ova {

namespace {

constexpr uint64_t kBlock = 512;
constexpr size_t kMaxMembers = 100000;
constexpr uint64_t kMaxMetaBytes = 1 << 20;  // pax headers and long names

using BlockReader = std::function<void(uint64_t offset, std::span<uint8_t> out)>;

std::string field(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

// Octal numbers, NUL or space terminated, or GNU base-256 (high bit set).
uint64_t number(const uint8_t* p, size_t n, const std::string& what, const char* name) {
  if (p[0] & 0x80) {
    if (p[0] != 0x80) fail(ErrorCategory::format, "{}: tar header has a negative or huge {}", what, name);
    uint64_t v = 0;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) fail(ErrorCategory::format, "{}: tar header {} is too large", what, name);
      v = (v << 8) | p[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  uint64_t v = 0;
  bool digits = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) fail(ErrorCategory::format, "{}: tar header {} is too large", what, name);
    v = v * 8 + (p[i] - '0');
    digits = true;
  }
  if (i < n && p[i] != 0 && p[i] != ' ') fail(ErrorCategory::format, "{}: tar header has an invalid {}", what, name);
  if (!digits) fail(ErrorCategory::format, "{}: tar header has no {}", what, name);
  return v;
}

// pax records: "LEN key=value\n" ...
// `size` stays UINT64_MAX when the records do not set it.
void parse_pax(std::string_view data, std::string& path, uint64_t& size, const std::string& what) {
  while (!data.empty()) {
    size_t space = data.find(' ');
    if (space == std::string_view::npos || space == 0)
      fail(ErrorCategory::format, "{}: damaged pax header in the tar archive", what);
    uint64_t len = 0;
    for (size_t i = 0; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9' || len > data.size())
        fail(ErrorCategory::format, "{}: damaged pax header in the tar archive", what);
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= space + 1 || len > data.size() || data[len - 1] != '\n')
      fail(ErrorCategory::format, "{}: damaged pax header in the tar archive", what);
    std::string_view record = data.substr(space + 1, len - space - 2);
    data.remove_prefix(len);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (key == "path") {
      path = std::string(value);
    } else if (key == "size") {
      uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || v > (1ull << 58)) fail(ErrorCategory::format, "{}: invalid pax size", what);
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      size = v;
    }
  }
}

std::vector<TarMember> index(uint64_t total, const BlockReader& read, const std::string& what) {
  std::vector<TarMember> members;
  std::string next_name;
  uint64_t next_size = UINT64_MAX;  // from a pax header, for the next member
  uint64_t pos = 0;
  uint8_t h[kBlock];
  for (;;) {
    if (pos + kBlock > total)
      fail(ErrorCategory::format, "{}: tar archive ends without its end-of-archive marker (truncated?)", what);
    read(pos, std::span(h, kBlock));
    if (all_zero(std::span(h, kBlock))) break;  // end of archive
    uint64_t sum = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    if (number(h + 148, 8, what, "checksum") != sum)
      fail(ErrorCategory::format, "{}: tar header at offset {} is damaged (checksum mismatch)", what, pos);
    const char type = static_cast<char>(h[156]);
    uint64_t size = number(h + 124, 12, what, "size");
    if (next_size != UINT64_MAX) size = next_size;
    const uint64_t data = pos + kBlock;
    if (!range_within(data, size, total))
      fail(ErrorCategory::format, "{}: tar member at offset {} needs {} bytes, but the archive ends at {} (truncated?)",
           what, pos, size, total);
    std::string name;
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = field(h + 345, 155);
      name = field(h, 100);
      if (!prefix.empty() && std::memcmp(h + 257, "ustar\0", 6) == 0) name = prefix + "/" + name;
    } else {
      name = field(h, 100);
    }
    if (type == 'x' || type == 'L') {
      if (size > kMaxMetaBytes) fail(ErrorCategory::format, "{}: tar extended header is too large", what);
      std::vector<uint8_t> meta(size);
      if (size) read(data, meta);
      std::string_view text(reinterpret_cast<const char*>(meta.data()), meta.size());
      if (type == 'x') {
        next_size = UINT64_MAX;
        parse_pax(text, next_name, next_size, what);
      } else {
        next_name = field(meta.data(), meta.size());
      }
      pos = data + align_up(size, kBlock);
      continue;
    }
    if (type != 'g') {
      if (members.size() >= kMaxMembers) fail(ErrorCategory::format, "{}: tar archive has too many members", what);
      TarMember m;
      m.name = next_name.empty() ? name : next_name;
      m.offset = data;
      m.size = size;
      m.regular = type == '0' || type == '\0' || type == '7';
      // Hard links, symlinks and directories carry no data of their own.
      if (!m.regular && type != '5' && type != '1' && type != '2' && type != '3' && type != '4' && type != '6')
        fail(ErrorCategory::unsupported, "{}: tar member '{}' has an unsupported type '{}'", what, m.name, type);
      if (type == '1' || type == '2' || type == '5') size = 0;
      members.push_back(std::move(m));
    }
    next_name.clear();
    next_size = UINT64_MAX;
    pos = data + align_up(size, kBlock);
  }
  return members;
}

}  // namespace

std::vector<TarMember> read_tar_index(const File& file, const std::string& what) {
  return index(file.size(), [&](uint64_t offset, std::span<uint8_t> out) { file.read_exact(offset, out); }, what);
}

std::vector<TarMember> read_tar_index(std::span<const uint8_t> archive, const std::string& what) {
  return index(
      archive.size(),
      [&](uint64_t offset, std::span<uint8_t> out) { std::memcpy(out.data(), archive.data() + offset, out.size()); },
      what);
}

}  // namespace arche::image::ova
