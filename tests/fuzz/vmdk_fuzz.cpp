// libFuzzer target for the VMDK parsers and the paths that trust them: the text
// descriptor, the sparse header, open (embedded descriptor, grain directories,
// streamOptimized footer), map, reads (grain tables, compressed grains), check,
// and writes on a writable copy; plus the OVA parsers (tar index, OVF XML), which
// read the same kind of untrusted packages. Any input must end in success or an
// arche::Error, never a crash or a hang.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "image/format.h"
#include "image/ova/ovf.h"
#include "image/ova/tar_index.h"
#include "image/vmdk/vmdk_driver.h"
#include "image/vmdk/vmdk_format.h"

using namespace arche;

namespace {

std::string memfd_with(const uint8_t* data, size_t size, int* fd_out) {
  int fd = memfd_create("vmdk-fuzz", MFD_CLOEXEC);
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
  o.format = "vmdk";
  o.open_backing = false;
  o.writable = writable;
  auto dev = image::open_image(path, o);
  const uint64_t size = dev->size();
  if (dev->sequential_writes_only()) {  // a fresh stream: append a little and finish
    std::vector<uint8_t> pattern(65536, 0x5a);
    if (size >= pattern.size()) dev->write(0, pattern);
    dev->flush();
    return;
  }
  std::vector<uint8_t> buf(65536);
  auto extents = dev->map();
  for (size_t i = 0; i < extents.size() && i < 64; ++i) {
    uint64_t n = std::min<uint64_t>(extents[i].length, buf.size());
    dev->read(extents[i].offset, std::span(buf.data(), n));
  }
  (void)dev->info();
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
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    image::vmdk::parse_descriptor(text, "fuzz");
  } catch (const Error&) {
  }
  try {
    if (size >= 512) image::vmdk::parse_sparse_header(std::span(data, 512), "fuzz");
  } catch (const Error&) {
  }
  try {
    image::vmdk::replace_cid(text, 0x12345678);
  } catch (const Error&) {
  }
  try {
    image::ova::read_tar_index(std::span(data, size), "fuzz");
  } catch (const Error&) {
  }
  try {
    image::ova::parse_ovf(text, "fuzz");
  } catch (const Error&) {
  }

  int fd = -1;
  std::string path = memfd_with(data, size, &fd);
  try {
    exercise(path, false);
  } catch (const Error&) {
  }
  try {
    (void)image::vmdk_driver().check(path, image::RepairMode::none);
  } catch (const Error&) {
  }
  int copy_fd = -1;
  std::string copy = memfd_with(data, size, &copy_fd);
  try {
    exercise(copy, true);
  } catch (const Error&) {
  }
  close(copy_fd);
  close(fd);
  return 0;
}
