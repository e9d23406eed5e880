#include "image/raw.h"

#include <fcntl.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/units.h"

namespace arche::image {

RawDevice::RawDevice(File file) : file_(std::move(file)), size_(file_.size()) {
  sparse_queries_ = !file_.is_block_device();
}

void RawDevice::require_writable(const char* op) const {
  if (!writable()) fail(ErrorCategory::usage, "{}: {} on an image opened read-only", filename(), op);
}

void RawDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  file_.read_exact(offset, out);
}

void RawDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  require_writable("write");
  check_request(offset, data.size(), "write");
  file_.write_all(offset, data);
}

bool RawDevice::clone_from(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) {
  require_writable("write");
  check_request(offset, length, "write");
  return file_.clone_range(offset, source, source_offset, length);
}

void RawDevice::write_zero_bytes(uint64_t offset, uint64_t length) {
  static const std::vector<uint8_t> zeros(1 * MiB, 0);
  while (length > 0) {
    uint64_t n = std::min<uint64_t>(length, zeros.size());
    file_.write_all(offset, std::span(zeros.data(), n));
    offset += n;
    length -= n;
  }
}

void RawDevice::write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  require_writable("write zeroes");
  check_request(offset, length, "write zeroes");
  if (may_unmap && file_.punch_hole(offset, length)) return;
  if (file_.zero_range(offset, length)) return;
  write_zero_bytes(offset, length);
}

void RawDevice::discard(uint64_t offset, uint64_t length) {
  require_writable("discard");
  check_request(offset, length, "discard");
  // Only whole blocks are discarded (the BlockDevice contract); the edges stay.
  uint64_t start = align_up(offset, kGranularity);
  uint64_t end = align_down(offset + length, kGranularity);
  if (end <= start) return;
  if (!file_.punch_hole(start, end - start)) write_zero_bytes(start, end - start);
}

void RawDevice::flush() {
  if (writable()) file_.sync_data();
}

LayerStatus RawDevice::layer_status(uint64_t offset, uint64_t max_length) {
  uint64_t limit = std::min(max_length, size_ - std::min(offset, size_));
  if (sparse_queries_) {
    std::optional<uint64_t> data = file_.seek_data(offset);
    if (!data) {
      sparse_queries_ = false;
    } else if (*data > offset) {
      return {ExtentKind::zero, std::min(*data - offset, limit), std::nullopt};
    } else if (std::optional<uint64_t> hole = file_.seek_hole(offset)) {
      return {ExtentKind::data, std::min(*hole - offset, limit), offset};
    }
  }
  return {ExtentKind::data, limit, offset};
}

void RawDevice::resize(uint64_t new_size) {
  require_writable("resize");
  if (file_.is_block_device()) fail(ErrorCategory::unsupported, "{}: a block device cannot be resized", filename());
  file_.truncate(new_size);
  size_ = new_size;
}

ImageInfo RawDevice::info() const {
  ImageInfo i;
  i.filename = filename();
  i.format = "raw";
  i.virtual_size = size_;
  i.actual_size = file_.allocated_bytes();
  i.format_specific = Json{{"block-device", file_.is_block_device()}};
  return i;
}

namespace {

class RawDriver final : public FormatDriver {
 public:
  std::string name() const override { return "raw"; }
  int probe(std::span<const uint8_t>) const override { return 1; }  // anything is raw

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options, ChainState&) const override {
    File file = File::open(path, options.writable ? OpenMode::read_write : OpenMode::read_only);
    lock_image_file(file, options);
    return std::make_unique<RawDevice>(std::move(file));
  }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"preallocation", "off|falloc|full", "off",
             "off: a sparse file; falloc and full: the space reserved on disk"}};
  }

  void create(const std::string& path, const CreateOptions& options) const override {
    if (!options.backing_file.empty()) fail(ErrorCategory::usage, "raw images cannot have a backing file");
    std::string prealloc = "off";
    for (const auto& [key, value] : options.options) {
      if (key == "preallocation") prealloc = value;
      else fail(ErrorCategory::usage, "raw: unknown option '{}' (known: preallocation)", key);
    }
    File f = File::open(path, OpenMode::create_truncate);
    if (f.is_block_device()) {
      if (f.size() < options.size)
        fail(ErrorCategory::usage, "{}: device holds {} bytes, less than the requested {}", path, f.size(), options.size);
      return;
    }
    f.truncate(options.size);
    if (prealloc == "off") return;
    if (prealloc == "falloc" || prealloc == "full") {
      if (::posix_fallocate(f.fd(), 0, static_cast<off_t>(options.size)) != 0)
        fail(ErrorCategory::no_space, "{}: cannot preallocate {} bytes", path, options.size);
      return;
    }
    fail(ErrorCategory::usage, "raw: preallocation must be off, falloc or full (got '{}')", prealloc);
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions&) const override {
    Measurement m{size, size};
    if (source) {
      m.required = 0;
      for (const Extent& e : source->map())
        if (e.kind == ExtentKind::data) m.required += e.length;
    }
    return m;
  }
};

}  // namespace

const FormatDriver& raw_driver() {
  static const RawDriver driver;
  return driver;
}

}  // namespace arche::image
