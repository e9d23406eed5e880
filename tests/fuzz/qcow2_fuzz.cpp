// libFuzzer target for the qcow2 metadata parsers and the paths that trust them:
// header parsing, open, map, reads, check, and a few writes on a writable copy.
// Any input must end in success or an arche::Error, never a crash or a hang.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "image/format.h"
#include "image/qcow2/qcow2_driver.h"
#include "image/qcow2/qcow2_format.h"

using namespace arche;

namespace {

std::string memfd_with(const uint8_t* data, size_t size, int* fd_out) {
  int fd = memfd_create("qcow2-fuzz", MFD_CLOEXEC);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  *fd_out = fd;
  return "/proc/self/fd/" + std::to_string(fd);
}

void exercise(const std::string& path, bool writable) {
  image::OpenOptions o;
  o.format = "qcow2";
  o.open_backing = false;
  o.writable = writable;
  o.cache_bytes = 1 << 20;
  auto dev = image::open_image(path, o);
  const uint64_t size = dev->size();
  std::vector<uint8_t> buf(65536);
  auto extents = dev->map();
  for (size_t i = 0; i < extents.size() && i < 64; ++i) {
    uint64_t n = std::min<uint64_t>(extents[i].length, buf.size());
    dev->read(extents[i].offset, std::span(buf.data(), n));
  }
  if (writable && size >= 4096) {
    std::vector<uint8_t> pattern(4096, 0x5a);
    dev->write(0, pattern);
    dev->write(size - 4096, pattern);
    dev->write_zeroes(size / 2 - (size / 2) % 512, std::min<uint64_t>(size / 2, 1 << 20), false);
    dev->discard(0, std::min<uint64_t>(size, 1 << 20));
    dev->flush();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4 << 20)) return 0;
  try {
    image::qcow2::parse_header(std::span(data, size), size, "fuzz");
  } catch (const Error&) {
  }
  int fd = -1;
  std::string path = memfd_with(data, size, &fd);
  try {
    exercise(path, false);
  } catch (const Error&) {
  }
  try {
    File f = File::open(path, OpenMode::read_only);
    image::qcow2::check_file(f, image::RepairMode::none);
  } catch (const Error&) {
  }
  // The write path and repair on a copy (the first fd stays pristine).
  int copy_fd = -1;
  std::string copy = memfd_with(data, size, &copy_fd);
  try {
    exercise(copy, true);
  } catch (const Error&) {
  }
  try {
    File f = File::open(copy, OpenMode::read_write);
    image::qcow2::check_file(f, image::RepairMode::all);
  } catch (const Error&) {
  }
  close(copy_fd);
  close(fd);
  return 0;
}
