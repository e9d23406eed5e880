// Shared by the image fuzz targets: the input as an image file in memory, and the
// open / map / read / write / check exercise every driver gets. Any input must end
// in success or an arche::Error, never a crash, a hang or unbounded memory.
//
// An input is one selector byte and the image. The selector picks the expensive
// steps (Step bits), so most inputs cost an open, a map and a few reads, and the
// corpus still reaches the check, write, repair and resize paths (seeds.sh writes
// every seed once with each of a few selectors).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/endian.h"
#include "core/error.h"
#include "image/format.h"

namespace arche::fuzz {

// Inputs are bounded (tests/fuzz/targets.sh passes the same -max_len): bigger ones
// make every mutation slower and reach no parser code a small image does not.
constexpr size_t kMaxImageInput = 64 << 10;

enum Step : uint8_t {
  kCheck = 1,   // check the pristine image
  kWrite = 2,   // writes, zeroes and discards on a writable copy
  kRepair = 4,  // check with repair on the copy
  kResize = 8,  // grow the copy
};

// How the image becomes a file. Without offsets: in two parts, like the file
// system targets' volumes (filesystem_fuzz.h), so that a seed need not carry the
// megabytes of zeros between an image's metadata and its data or footer:
//   u32 le  file offset of part 2 (modulo 16 MiB: a mutation may move it anywhere)
//   u32 le  length of part 1
//   part 1 (at offset 0), part 2 (the rest; where they overlap part 2 wins)
// With offsets (VHDX, whose structures sit megabytes apart): the image cut into
// equal parts placed there, in a sparse file of `file_size` bytes.
struct Layout {
  std::vector<uint64_t> offsets;
  uint64_t file_size = 0;
};

// An image file in memory (memfd), made once per process and refilled for each
// input: no file system, no new descriptor per input. Drivers open it by path
// (/proc/self/fd/N) like any image.
class MemoryFile {
 public:
  explicit MemoryFile(const char* name)
      : fd_(memfd_create(name, MFD_CLOEXEC)), path_("/proc/self/fd/" + std::to_string(fd_)) {}
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  const std::string& fill(std::span<const uint8_t> image, const Layout& layout) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    if (layout.offsets.empty()) {
      if (image.size() < 8) return path_;
      const uint64_t second_offset = load_le32(image.data()) % (16 << 20);
      const size_t first_length = std::min<size_t>(load_le32(image.data() + 4), image.size() - 8);
      write_all(image.subspan(8, first_length), 0);
      write_all(image.subspan(8 + first_length), second_offset);
      return path_;
    }
    const size_t parts = layout.offsets.size(), part = image.size() / parts;
    for (size_t p = 0; p < parts; ++p) {
      const size_t begin = p * part, end = p + 1 == parts ? image.size() : begin + part;
      write_all(image.subspan(begin, end - begin), layout.offsets[p]);
    }
    if (layout.file_size && ftruncate(fd_, static_cast<off_t>(layout.file_size)) != 0) std::abort();
    return path_;
  }

 private:
  void write_all(std::span<const uint8_t> bytes, uint64_t at) {
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(at + done));
      if (n <= 0) std::abort();  // a memfd write fails only when memory is out
      done += static_cast<size_t>(n);
    }
  }

  int fd_;
  std::string path_;
};

// The start of a two-part image's file (its part 1): what a target's header
// parsers read.
inline std::span<const uint8_t> head_of(std::span<const uint8_t> image) {
  if (image.size() < 8) return {};
  return image.subspan(8, std::min<size_t>(load_le32(image.data() + 4), image.size() - 8));
}

template <typename Fn>
void attempt(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
  }
}

// Opens the image and reads through what it maps: the start of up to 32 extents
// and their last sector, and the last 4 KiB of the disk (every table lookup and
// data path, without copying megabytes per input). `writes`: the writes, zeroes
// and discards of a guest, at both ends and in the middle, then a flush; `resize`:
// a growth by 1 MiB and a write into it.
inline void exercise(const std::string& path, const std::string& format, bool writes, bool resize) {
  image::OpenOptions o;
  o.format = format;
  o.open_backing = false;
  o.writable = writes || resize;
  o.cache_bytes = 1 << 20;  // bounded memory whatever the tables claim
  auto dev = image::open_image(path, o);
  const uint64_t size = dev->size();
  (void)dev->info();
  std::vector<uint8_t> buf(4096, 0x5a);
  if (dev->sequential_writes_only()) {  // a fresh stream (VMDK): append a little and finish
    if (size >= buf.size()) dev->write(0, buf);
    dev->flush();
    return;
  }
  auto extents = dev->map();
  for (size_t i = 0; i < extents.size() && i < 32; ++i) {
    const image::Extent& e = extents[i];
    dev->read(e.offset, std::span(buf.data(), std::min<uint64_t>(e.length, buf.size())));
    if (e.length > buf.size()) dev->read(e.offset + e.length - 512, std::span(buf.data(), 512));
  }
  if (size >= 4096) dev->read(size - 4096, std::span(buf.data(), 4096));
  if (writes && size >= 4096) {
    std::fill(buf.begin(), buf.end(), 0x5a);
    dev->write(0, buf);
    dev->write(size - 4096, buf);
    dev->write_zeroes(size / 2 - (size / 2) % 512, std::min<uint64_t>(size / 2, 128 << 10), false);
    dev->discard(0, std::min<uint64_t>(size, 128 << 10));
    dev->flush();
  }
  if (resize) {
    dev->resize(size + (1 << 20));
    dev->write(size, std::span(buf.data(), 512));
    dev->flush();
  }
}

// Runs the exercise on the input's image read-only, and the steps its selector
// byte picks.
inline void run_all(const uint8_t* data, size_t size, const std::string& format, const Layout& layout = {}) {
  if (size < 1 || size > kMaxImageInput) return;
  const uint8_t steps = data[0];
  const std::span<const uint8_t> image(data + 1, size - 1);
  static MemoryFile pristine("fuzz-image"), copy("fuzz-copy");
  const std::string& path = pristine.fill(image, layout);
  attempt([&] { exercise(path, format, false, false); });
  if (steps & kCheck) attempt([&] { (void)image::driver_for(format).check(path, image::RepairMode::none); });
  if (!(steps & (kWrite | kRepair | kResize))) return;
  const std::string& copy_path = copy.fill(image, layout);
  if (steps & (kWrite | kResize)) attempt([&] { exercise(copy_path, format, steps & kWrite, steps & kResize); });
  if (steps & kRepair) attempt([&] { (void)image::driver_for(format).check(copy_path, image::RepairMode::all); });
}

}  // namespace arche::fuzz
