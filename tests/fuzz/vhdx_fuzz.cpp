// The input is four parts placed at 0, 1, 2 and 3 MiB of a sparse 16 MiB file:
// header section, log, and the regions qemu and arche put there, without megabytes
// of zeros in every input.
// libFuzzer target for VHDX: headers, region tables, metadata (with parent
// locators), the log (replayed in memory read-only, into the copy read-write), BAT,
// sector bitmaps, reads, writes on a copy, check and repair.
#include "image/vhdx/vhdx_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4 << 20)) return 0;
  try {
    image::vhdx::parse_header(std::span(data, size), "fuzz");
  } catch (const Error&) {
  }
  try {
    image::vhdx::parse_region_table(std::span(data, size), "fuzz");
  } catch (const Error&) {
  }
  try {
    image::vhdx::parse_metadata(std::span(data, size), "fuzz");
  } catch (const Error&) {
  }
  fuzz::run_all(data, size, "vhdx", fuzz::Layout{4, 16 << 20});
  return 0;
}
