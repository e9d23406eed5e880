// libFuzzer target for VHD: footer and dynamic header parsing, BAT and bitmaps,
// parent locators, reads, writes on a copy, check and repair.
#include "image/vhd/vhd_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4 << 20)) return 0;
  try {
    if (size >= 512) image::vhd::parse_footer(std::span(data, 512), "fuzz");
  } catch (const Error&) {
  }
  try {
    if (size >= 1536) image::vhd::parse_dynamic_header(std::span(data + 512, 1024), "fuzz");
  } catch (const Error&) {
  }
  if (size >= 64) (void)image::vhd::locator_path(image::vhd::kPlatformMacX, std::span(data, 64));
  if (size >= 64) (void)image::vhd::locator_path(image::vhd::kPlatformW2ru, std::span(data, 64));
  fuzz::run_all(data, size, "vpc");
  return 0;
}
