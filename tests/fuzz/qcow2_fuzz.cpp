// libFuzzer target for the qcow2 metadata parsers and the paths that trust them:
// header parsing, open, map, reads, check, and a few writes on a writable copy.
// Any input must end in success or an arche::Error, never a crash or a hang.
#include "image/qcow2/qcow2_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4 << 20)) return 0;
  try {
    image::qcow2::parse_header(std::span(data, size), size, "fuzz");
  } catch (const Error&) {
  }
  fuzz::run_all(data, size, "qcow2");
  return 0;
}
