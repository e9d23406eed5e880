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

#include "core/endian.h"
#include "core/error.h"
#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::fuzz {

// The input as a volume of `size` bytes that reads as zeros where the input
// puts nothing. Real volumes keep their metadata in a few places far apart
// (FAT32: boot sector and FAT at the start, directories after two FATs of
// 256 KiB and more), so the input is two parts, placed by an 8-byte header:
//   u32 le  byte offset of part 2 on the volume (any value: a mutation may move it)
//   u32 le  length of part 1
//   part 1 (at offset 0), part 2 (the rest of the input)
// Small seeds (tens of KiB: where mkfs put the metadata and the first files)
// stand for whole volumes, and each run copies nothing.
class TwoPartDevice final : public image::BlockDevice {
 public:
  TwoPartDevice(const uint8_t* data, size_t length, uint64_t size) : size_(size) {
    if (length < 8) return;
    const uint64_t second_offset = load_le32(data), first_length = std::min<uint64_t>(load_le32(data + 4), length - 8);
    first_ = {data + 8, static_cast<size_t>(first_length)};
    second_ = {data + 8 + first_length, static_cast<size_t>(length - 8 - first_length)};
    second_offset_ = second_offset;
    size_ = std::max({size_, first_.size(), second_offset_ + second_.size()});
  }

  uint64_t size() const override { return size_; }
  bool writable() const override { return false; }
  std::string format() const override { return "memory"; }
  std::string filename() const override { return "fuzz-input"; }
  void read(uint64_t offset, std::span<uint8_t> out) override {
    check_request(offset, out.size(), "read");
    std::fill(out.begin(), out.end(), 0);
    copy_part(first_, 0, offset, out);
    copy_part(second_, second_offset_, offset, out);  // part 2 wins where they overlap
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
  static void copy_part(std::span<const uint8_t> part, uint64_t at, uint64_t offset, std::span<uint8_t> out) {
    const uint64_t from = std::max(at, offset), to = std::min(at + part.size(), offset + out.size());
    if (from < to) std::memcpy(out.data() + (from - offset), part.data() + (from - at), to - from);
  }

  std::span<const uint8_t> first_, second_;
  uint64_t second_offset_ = 0;
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
  std::vector<uint8_t> buf(32 << 10);
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    std::vector<volume::DirEntry> entries;
    attempt([&] { entries = fs.list(dir); });
    for (const volume::DirEntry& e : entries) {
      if (budget-- == 0) return;
      const std::string path = (dir == "/" ? "" : dir) + "/" + e.name;
      attempt([&] { (void)fs.stat(path); });
      if (e.stat.type == volume::FileType::regular) {
        attempt([&] {
          for (uint64_t at = 0; at < (128u << 10);) {  // bounded: a crafted size may claim terabytes
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
