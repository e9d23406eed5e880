// Shared by the file system reader fuzz targets (fat_fuzz, xfs_fuzz): the input
// as an in-memory volume, and the whole-tree exercise every reader gets. Any
// input must end in success or an arche::Error, never a crash, a hang or
// unbounded memory.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::fuzz {

// The input at the start of a volume of `size` bytes that reads as zeros beyond
// it: a small seed (the first blocks of a real image, where mkfs puts the
// metadata and the first files) stands for the whole volume without copying it.
class ZeroExtendedDevice final : public image::BlockDevice {
 public:
  ZeroExtendedDevice(const uint8_t* data, size_t length, uint64_t size)
      : data_(data), length_(length), size_(std::max<uint64_t>(size, length)) {}

  uint64_t size() const override { return size_; }
  bool writable() const override { return false; }
  std::string format() const override { return "memory"; }
  std::string filename() const override { return "fuzz-input"; }
  void read(uint64_t offset, std::span<uint8_t> out) override {
    check_request(offset, out.size(), "read");
    const size_t have = offset < length_ ? static_cast<size_t>(std::min<uint64_t>(out.size(), length_ - offset)) : 0;
    if (have) std::memcpy(out.data(), data_ + offset, have);
    std::fill(out.begin() + static_cast<ptrdiff_t>(have), out.end(), 0);
  }
  void write(uint64_t, std::span<const uint8_t>) override { fail(ErrorCategory::usage, "fuzz device is read-only"); }
  void write_zeroes(uint64_t, uint64_t, bool) override { fail(ErrorCategory::usage, "fuzz device is read-only"); }
  void discard(uint64_t, uint64_t) override {}
  void flush() override {}
  image::LayerStatus layer_status(uint64_t offset, uint64_t max_length) override {
    return {image::ExtentKind::data, std::min(max_length, size_ - offset), std::nullopt, false};
  }
  uint64_t granularity() const override { return 512; }
  image::ImageInfo info() const override {
    image::ImageInfo i;
    i.format = "memory";
    i.virtual_size = size_;
    return i;
  }

 private:
  const uint8_t* data_;
  size_t length_;
  uint64_t size_;
};

// Everything a caller of the Filesystem interface may do: labels and sizes, the
// whole tree listed (bounded: a crafted volume may hold millions of entries),
// every file read, every link resolved, and the used ranges.
inline void exercise_filesystem(volume::Filesystem& fs) {
  auto attempt = [](auto&& fn) {
    try {
      fn();
    } catch (const Error&) {
    }
  };
  attempt([&] { (void)fs.label(), (void)fs.uuid(), (void)fs.size_bytes(), (void)fs.used_bytes(); });
  size_t budget = 4096;  // entries visited
  std::vector<uint8_t> buf(64 << 10);
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    std::vector<volume::DirEntry> entries;
    attempt([&] { entries = fs.list(dir); });
    for (const volume::DirEntry& e : entries) {
      if (budget-- == 0) return;
      const std::string path = (dir == "/" ? "" : dir) + "/" + e.name;
      attempt([&] { (void)fs.stat(path); });
      if (e.stat.type == volume::FileType::regular) {
        attempt([&] {
          for (uint64_t at = 0; at < (256u << 10);) {  // bounded: a crafted size may claim terabytes
            const size_t n = fs.read(path, at, buf);
            if (n == 0) break;
            at += n;
          }
        });
        attempt([&] { (void)fs.read(path, e.stat.size > 3 ? e.stat.size - 3 : 0, buf); });
      } else if (e.stat.type == volume::FileType::symlink) {
        attempt([&] { (void)fs.readlink(path); });
      } else if (e.stat.type == volume::FileType::directory && depth < 16) {
        walk(path, depth + 1);
      }
    }
  };
  walk("/", 0);
  attempt([&] { (void)fs.stat("/no/such/path"); });
  attempt([&] { (void)fs.used_ranges(); });
}

}  // namespace arche::fuzz
