// libFuzzer target for VHD: footer and dynamic header parsing, BAT and bitmaps,
// parent locators, reads, writes on a copy, check and repair, resize (the first
// byte picks those: fuzz_common.h).
#include "image/vhd/vhd_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  const std::span<const uint8_t> head = fuzz::head_of(std::span(data + 1, size - 1));
  fuzz::attempt([&] {
    if (head.size() >= 512) image::vhd::parse_footer(head.first(512), "fuzz");
  });
  fuzz::attempt([&] {
    if (head.size() >= 1536) image::vhd::parse_dynamic_header(head.subspan(512, 1024), "fuzz");
  });
  if (head.size() >= 64) (void)image::vhd::locator_path(image::vhd::kPlatformMacX, head.first(64));
  if (head.size() >= 64) (void)image::vhd::locator_path(image::vhd::kPlatformW2ru, head.first(64));
  fuzz::run_all(data, size, "vpc");
  return 0;
}
