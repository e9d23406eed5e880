// libFuzzer target for VDI: header parsing, block map, reads, writes on a copy,
// check and repair, resize (the first byte picks those: fuzz_common.h).
#include "image/vdi/vdi_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  fuzz::attempt([&] { image::vdi::parse_header(fuzz::head_of(std::span(data + 1, size - 1)), "fuzz"); });
  fuzz::run_all(data, size, "vdi");
  return 0;
}
