#include "volume/reader_support.h"

#include <algorithm>

#include "core/error.h"

namespace arche::volume {

std::vector<std::string> split_path(std::string_view path, std::string_view fs) {
  if (path.empty() || path.front() != '/') fail(ErrorCategory::usage, "{}: path '{}' is not absolute", fs, path);
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    pos = end + 1;
  }
  return parts;
}

void read_volume(image::BlockDevice& volume, uint64_t offset, std::span<uint8_t> out, std::string_view fs) {
  const uint64_t size = volume.size();
  if (offset > size || out.size() > size - offset)
    fail(ErrorCategory::corrupt, "{}: metadata points to bytes {}..{} beyond the end of the volume ({} bytes)", fs,
         offset, offset + out.size(), size);
  volume.read(offset, out);
}

std::string fold_ascii_case(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

void merge_ranges(std::vector<ByteRange>& ranges) {
  std::erase_if(ranges, [](const ByteRange& r) { return r.length == 0; });
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> merged;
  for (const ByteRange& r : ranges) {
    if (!merged.empty() && r.offset <= merged.back().offset + merged.back().length) {
      ByteRange& last = merged.back();
      last.length = std::max(last.offset + last.length, r.offset + r.length) - last.offset;
    } else {
      merged.push_back(r);
    }
  }
  ranges = std::move(merged);
}

}  // namespace arche::volume
