// libFuzzer target for VDI: header parsing, block map, reads, writes on a copy,
// check and repair.
#include "image/vdi/vdi_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4 << 20)) return 0;
  try {
    image::vdi::parse_header(std::span(data, size), "fuzz");
  } catch (const Error&) {
  }
  fuzz::run_all(data, size, "vdi");
  return 0;
}
