// libFuzzer target for the VMDK parsers and the paths that trust them: the text
// descriptor, the sparse header, open (embedded descriptor, grain directories,
// streamOptimized footer), map, reads (grain tables, compressed grains), check,
// and writes on a writable copy; plus the OVA parsers (tar index, OVF XML), which
// read the same kind of untrusted packages. Any input must end in success or an
// arche::Error, never a crash or a hang.
#include <string_view>

#include "image/ova/ovf.h"
#include "image/ova/tar_index.h"
#include "image/vmdk/vmdk_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

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

  fuzz::run_all(data, size, "vmdk");
  return 0;
}
