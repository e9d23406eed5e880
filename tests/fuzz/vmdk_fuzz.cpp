// libFuzzer target for the VMDK parsers and the paths that trust them: the text
// descriptor, the sparse header, open (embedded descriptor, grain directories,
// streamOptimized footer), map, reads (grain tables, compressed grains), check,
// and writes on a writable copy; plus the OVA parsers (tar index, OVF XML), which
// read the same kind of untrusted packages. The first byte picks the expensive
// steps (fuzz_common.h). Any input must end in success or an
// arche::Error, never a crash or a hang.
#include <string_view>

#include "image/ova/ovf.h"
#include "image/ova/tar_index.h"
#include "image/vmdk/vmdk_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  const std::span<const uint8_t> head = fuzz::head_of(std::span(data + 1, size - 1));
  const std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
  fuzz::attempt([&] { image::vmdk::parse_descriptor(text, "fuzz"); });
  fuzz::attempt([&] {
    if (head.size() >= 512) image::vmdk::parse_sparse_header(head.first(512), "fuzz");
  });
  fuzz::attempt([&] { image::vmdk::replace_cid(text, 0x12345678); });
  fuzz::attempt([&] { image::ova::read_tar_index(head, "fuzz"); });
  fuzz::attempt([&] { image::ova::parse_ovf(text, "fuzz"); });

  fuzz::run_all(data, size, "vmdk");
  return 0;
}
