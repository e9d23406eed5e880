#include "tests/convert/convert_test_util.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/file.h"
#include "image/format.h"
#include "volume/tree.h"

namespace arche::convert::testing {

std::shared_ptr<image::BlockDevice> open_read_only(const std::string& path) {
  image::OpenOptions o;
  o.force_share = true;
  return image::open_image(path, o);
}

UsedMap map_of(const std::vector<std::string>& raw_sources) {
  std::vector<volume::Disk> disks;
  std::vector<std::shared_ptr<image::BlockDevice>> devices;
  for (const std::string& p : raw_sources) {
    devices.push_back(open_read_only(p));
    disks.push_back({p.substr(p.rfind('/') + 1), devices.back()});
  }
  std::unique_ptr<volume::Tree> tree = volume::explore(disks);
  return map_used_blocks(*tree, devices);
}

uint64_t expect_image_matches(const std::string& source, const std::string& image, const DiskMap& map) {
  auto src = open_read_only(source);
  auto img = open_read_only(image);
  EXPECT_EQ(src->size(), img->size());
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<uint8_t> a(kChunk), b(kChunk);
  uint64_t compared = 0, pos = 0;
  auto expect_zero = [&](uint64_t from, uint64_t to) {
    for (uint64_t at = from; at < to; at += kChunk) {
      const uint64_t n = std::min(kChunk, to - at);
      img->read(at, std::span(b.data(), n));
      if (!all_zero(std::span(b.data(), n))) {
        ADD_FAILURE() << image << ": bytes outside the map at " << at << " are not zero";
        return;
      }
    }
  };
  for (const volume::ByteRange& r : map.ranges) {
    expect_zero(pos, r.offset);
    for (uint64_t at = r.offset; at < r.offset + r.length; at += kChunk) {
      const uint64_t n = std::min(kChunk, r.offset + r.length - at);
      src->read(at, std::span(a.data(), n));
      img->read(at, std::span(b.data(), n));
      if (std::memcmp(a.data(), b.data(), n) != 0) {
        ADD_FAILURE() << image << " differs from " << source << " in the used range at " << at;
        return compared;
      }
      compared += n;
    }
    pos = r.offset + r.length;
  }
  expect_zero(pos, src->size());
  return compared;
}

void copy_out(const std::string& image, uint64_t offset, uint64_t length, const std::string& file) {
  auto img = open_read_only(image);
  File out = File::open(file, OpenMode::create_truncate);
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t at = 0; at < length; at += buf.size()) {
    const uint64_t n = std::min<uint64_t>(buf.size(), length - at);
    img->read(offset + at, std::span(buf.data(), n));
    out.write_all(at, std::span<const uint8_t>(buf.data(), n));
  }
}

}  // namespace arche::convert::testing
