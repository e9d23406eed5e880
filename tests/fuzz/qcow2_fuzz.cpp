// libFuzzer target for the qcow2 metadata parsers and the paths that trust them:
// header parsing, open, map, reads, check, and a few writes on a writable copy.
// The first byte picks the expensive steps (fuzz_common.h). Any input must end in success or an arche::Error, never a
// crash or a hang.
#include "image/qcow2/qcow2_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  const std::span<const uint8_t> head = fuzz::head_of(std::span(data + 1, size - 1));
  fuzz::attempt([&] { image::qcow2::parse_header(head, head.size(), "fuzz"); });
  fuzz::run_all(data, size, "qcow2");
  return 0;
}
