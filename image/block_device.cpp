#include "image/block_device.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cstring>

#include "core/error.h"

namespace arche::image {

const char* to_string(ExtentKind kind) {
  switch (kind) {
    case ExtentKind::data: return "data";
    case ExtentKind::zero: return "zero";
    case ExtentKind::unallocated: return "unallocated";
  }
  return "?";
}

size_t BlockDevice::pack(std::span<const uint8_t>, std::span<uint8_t>) const {
  fail(ErrorCategory::unsupported, "{}: format {} cannot store compressed blocks", filename(), format());
}

void BlockDevice::write_packed(std::span<const PackedBlock>) {
  fail(ErrorCategory::unsupported, "{}: format {} cannot store compressed blocks", filename(), format());
}

bool BlockDevice::clone_from(uint64_t, const File&, uint64_t, uint64_t) { return false; }

void BlockDevice::resize(uint64_t) {
  fail(ErrorCategory::unsupported, "{}: format {} cannot be resized", filename(), format());
}

void BlockDevice::check_request(uint64_t offset, uint64_t length, const char* op) const {
  uint64_t sz = size();
  if (offset > sz || length > sz - offset)
    fail(ErrorCategory::usage, "{}: {} of {} bytes at offset {} is beyond the end of the {}-byte disk", filename(), op,
         length, offset, sz);
}

void BlockDevice::read_from_backing(uint64_t offset, std::span<uint8_t> out) const {
  BlockDevice* b = backing();
  uint64_t covered = 0;
  if (b && offset < b->size()) {
    covered = std::min<uint64_t>(out.size(), b->size() - offset);
    b->read(offset, out.first(covered));
  }
  std::memset(out.data() + covered, 0, out.size() - covered);
}

namespace {

bool contiguous(const Extent& a, const Extent& b) {
  if (a.kind != b.kind || a.depth != b.depth || a.compressed != b.compressed || a.file != b.file) return false;
  if (a.host_offset.has_value() != b.host_offset.has_value()) return false;
  if (a.compressed) return false;  // compressed clusters are never one run
  return !a.host_offset || *a.host_offset + a.length == *b.host_offset;
}

void append(std::vector<Extent>& out, Extent e) {
  if (!out.empty() && out.back().offset + out.back().length == e.offset && contiguous(out.back(), e)) {
    out.back().length += e.length;
    return;
  }
  out.push_back(std::move(e));
}

// Walks one layer; ranges it leaves unallocated are resolved in the layer below.
// Iterative over depth would need an explicit stack; chains are bounded (format.cpp).
void map_layer(BlockDevice& dev, int depth, uint64_t offset, uint64_t length, std::vector<Extent>& out) {
  const uint64_t end = offset + length;
  while (offset < end) {
    LayerStatus st = dev.layer_status(offset, end - offset);
    uint64_t n = std::min(st.length, end - offset);
    if (n == 0) fail(ErrorCategory::internal, "{}: layer_status returned an empty run at {}", dev.filename(), offset);
    if (st.kind != ExtentKind::unallocated) {
      append(out, Extent{offset, n, st.kind, depth, st.host_offset, st.compressed, dev.filename()});
    } else if (BlockDevice* below = dev.backing(); below && offset < below->size()) {
      uint64_t inside = std::min(n, below->size() - offset);
      map_layer(*below, depth + 1, offset, inside, out);
      if (inside < n)
        append(out, Extent{offset + inside, n - inside, ExtentKind::unallocated, depth, {}, false, dev.filename()});
    } else {
      append(out, Extent{offset, n, ExtentKind::unallocated, depth, {}, false, dev.filename()});
    }
    offset += n;
  }
}

}  // namespace

std::vector<Extent> BlockDevice::map(uint64_t offset, uint64_t length) {
  check_request(offset, length, "map");
  std::vector<Extent> out;
  map_layer(*this, 0, offset, length, out);
  return out;
}

bool BlockDevice::known_zero(uint64_t offset, uint64_t length) {
  for (const Extent& e : map(offset, length))
    if (e.kind == ExtentKind::data) return false;
  return true;
}

std::vector<FileIdentity> layer_identity(const BlockDevice& layer) {
  std::vector<FileIdentity> out;
  for (const std::string& file : layer.files()) {
    FileIdentity id;
    boost::system::error_code ec;
    boost::filesystem::path canonical = boost::filesystem::canonical(file, ec);
    id.path = ec ? boost::filesystem::absolute(file).string() : canonical.string();
    struct stat st {};
    if (::stat(id.path.c_str(), &st) != 0) throw_errno(errno, "stat " + id.path);
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = static_cast<uint64_t>(st.st_size);
    id.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    id.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
    id.regular = S_ISREG(st.st_mode);
    out.push_back(std::move(id));
  }
  return out;
}

int chain_length(const BlockDevice& top) {
  int n = 1;
  for (const BlockDevice* b = top.backing(); b; b = b->backing()) ++n;
  return n;
}

}  // namespace arche::image
