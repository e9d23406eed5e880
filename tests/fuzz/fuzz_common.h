// Shared by the image fuzz targets: the input as a file (memfd), and the open /
// map / read / write exercise every driver gets. Any input must end in success or an
// arche::Error, never a crash, a hang or unbounded memory.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/format.h"

namespace arche::fuzz {

// How the input becomes a file: as it is, or (for formats whose structures sit
// megabytes apart, like VHDX) cut into `segments` equal parts placed at 1 MiB
// steps in a sparse file of `file_size` bytes.
struct Layout {
  int segments = 1;
  uint64_t file_size = 0;  // 0: the input's size
};

inline std::string memfd_with(const uint8_t* data, size_t size, int* fd_out, Layout layout = {}) {
  int fd = memfd_create("image-fuzz", MFD_CLOEXEC);
  const size_t part = layout.segments > 1 ? size / layout.segments : size;
  for (int s = 0; s < layout.segments; ++s) {
    const size_t begin = s * part, end = s + 1 == layout.segments ? size : begin + part;
    size_t done = 0;
    while (begin + done < end) {
      ssize_t n = pwrite(fd, data + begin + done, end - begin - done, static_cast<off_t>((uint64_t{1} << 20) * s + done));
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  if (layout.file_size && ftruncate(fd, static_cast<off_t>(layout.file_size)) != 0) {
  }
  *fd_out = fd;
  return "/proc/self/fd/" + std::to_string(fd);
}

inline void exercise(const std::string& path, const std::string& format, bool writable) {
  image::OpenOptions o;
  o.format = format;
  o.open_backing = false;
  o.writable = writable;
  auto dev = image::open_image(path, o);
  const uint64_t size = dev->size();
  (void)dev->info();
  std::vector<uint8_t> buf(65536);
  auto extents = dev->map();
  for (size_t i = 0; i < extents.size() && i < 64; ++i) {
    uint64_t n = std::min<uint64_t>(extents[i].length, buf.size());
    dev->read(extents[i].offset, std::span(buf.data(), n));
  }
  if (size >= 4096) dev->read(size - 4096, std::span(buf.data(), 4096));
  if (writable && size >= 4096) {
    std::vector<uint8_t> pattern(4096, 0x5a);
    dev->write(0, pattern);
    dev->write(size - 4096, pattern);
    dev->write_zeroes(size / 2 - (size / 2) % 512, std::min<uint64_t>(size / 2, 1 << 20), false);
    dev->discard(0, std::min<uint64_t>(size, 1 << 20));
    dev->flush();
  }
}

// Runs the exercise on the pristine input (read-only, then check) and on a copy
// (writes, then repair).
inline void run_all(const uint8_t* data, size_t size, const std::string& format, Layout layout = {}) {
  int fd = -1;
  std::string path = memfd_with(data, size, &fd, layout);
  try {
    exercise(path, format, false);
  } catch (const Error&) {
  }
  try {
    image::driver_for(format).check(path, image::RepairMode::none);
  } catch (const Error&) {
  }
  int copy_fd = -1;
  std::string copy = memfd_with(data, size, &copy_fd, layout);
  try {
    exercise(copy, format, true);
  } catch (const Error&) {
  }
  try {
    image::driver_for(format).check(copy, image::RepairMode::all);
  } catch (const Error&) {
  }
  close(copy_fd);
  close(fd);
}

}  // namespace arche::fuzz
