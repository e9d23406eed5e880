#include "volume/views.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/units.h"

namespace arche::volume {

void ReadOnlyDevice::refuse(const char* op) const {
  fail(ErrorCategory::permission, "{}: cannot {}: read-only view", name_, op);
}
void ReadOnlyDevice::write(uint64_t, std::span<const uint8_t>) { refuse("write"); }
void ReadOnlyDevice::write_zeroes(uint64_t, uint64_t, bool) { refuse("write zeroes"); }
void ReadOnlyDevice::discard(uint64_t, uint64_t) { refuse("discard"); }

image::ImageInfo ReadOnlyDevice::info() const {
  image::ImageInfo i;
  i.filename = name_;
  i.format = format();
  i.virtual_size = size();
  return i;
}

// ---- SliceDevice ----------------------------------------------------------------

SliceDevice::SliceDevice(std::shared_ptr<image::BlockDevice> base, uint64_t offset, uint64_t length, std::string name)
    : ReadOnlyDevice(std::move(name)), base_(std::move(base)), offset_(offset), length_(length) {
  if (!range_within(offset, length, base_->size()))
    fail(ErrorCategory::corrupt, "{}: {} bytes at offset {} reach beyond the end of {} ({} bytes)", filename(), length,
         offset, base_->filename(), base_->size());
}

void SliceDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  base_->read(offset_ + offset, out);
}

image::LayerStatus SliceDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, std::min(max_length, length_ - std::min(offset, length_)), "status");
  image::LayerStatus s = base_->layer_status(offset_ + offset, std::min(max_length, length_ - offset));
  s.length = std::min(s.length, length_ - offset);
  return s;
}

// ---- SegmentedDevice --------------------------------------------------------------

SegmentedDevice::SegmentedDevice(std::vector<Segment> segments, std::string name)
    : ReadOnlyDevice(std::move(name)), segments_(std::move(segments)) {
  for (const Segment& s : segments_) {
    if (s.areas.empty() || s.length == 0) fail(ErrorCategory::corrupt, "{}: empty segment", filename());
    const uint64_t n = s.areas.size();
    uint64_t per_area = s.length;
    if (n > 1) {
      if (s.stripe_size == 0 || s.length % (s.stripe_size * n) != 0)
        fail(ErrorCategory::corrupt, "{}: a striped segment of {} bytes is not a whole number of {} × {}-byte stripes",
             filename(), s.length, n, s.stripe_size);
      per_area = s.length / n;
    }
    for (const StripeArea& a : s.areas)
      if (!a.device || !range_within(a.offset, per_area, a.device->size()))
        fail(ErrorCategory::corrupt, "{}: a segment needs {} bytes at offset {} of {}, which is smaller", filename(),
             per_area, a.offset, a.device ? a.device->filename() : "(missing device)");
    starts_.push_back(size_);
    if (s.length > UINT64_MAX - size_) fail(ErrorCategory::corrupt, "{}: segments overflow", filename());
    size_ += s.length;
  }
}

SegmentedDevice::Located SegmentedDevice::locate(uint64_t offset) const {
  size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin()) - 1;
  const Segment& s = segments_[i];
  const uint64_t in = offset - starts_[i];
  if (s.areas.size() == 1) return {s.areas[0].device.get(), s.areas[0].offset + in, s.length - in};
  const uint64_t chunk = in / s.stripe_size, within = in % s.stripe_size;
  const uint64_t n = s.areas.size();
  const StripeArea& a = s.areas[chunk % n];
  return {a.device.get(), a.offset + (chunk / n) * s.stripe_size + within, s.stripe_size - within};
}

void SegmentedDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  size_t done = 0;
  while (done < out.size()) {
    Located l = locate(offset + done);
    size_t n = static_cast<size_t>(std::min<uint64_t>(l.run, out.size() - done));
    l.device->read(l.offset, out.subspan(done, n));
    done += n;
  }
}

image::LayerStatus SegmentedDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, std::min(max_length, size_ - std::min(offset, size_)), "status");
  Located l = locate(offset);
  image::LayerStatus s = l.device->layer_status(l.offset, std::min(max_length, l.run));
  s.host_offset.reset();  // an offset in some other device's file says nothing here
  return s;
}

// ---- MemoryDevice -------------------------------------------------------------------

MemoryDevice::MemoryDevice(std::vector<uint8_t> bytes, std::string name)
    : ReadOnlyDevice(std::move(name)), bytes_(std::move(bytes)) {}

void MemoryDevice::read(uint64_t offset, std::span<uint8_t> out) {
  check_request(offset, out.size(), "read");
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
}

image::LayerStatus MemoryDevice::layer_status(uint64_t offset, uint64_t max_length) {
  check_request(offset, 0, "status");
  return {image::ExtentKind::data, std::min<uint64_t>(max_length, bytes_.size() - offset), {}, false};
}

}  // namespace arche::volume
