// libFuzzer target for the ext2/3/4 wrapper (libext2fs through ext_io.h's io_manager,
// the journal check, directory and extent walks, file reads, used ranges) over a
// crafted volume: the input placed in a 64 MiB volume (filesystem_fuzz.h). Only the
// wrapper is instrumented: libext2fs is the system's.
#include "tests/fuzz/filesystem_fuzz.h"
#include "volume/readers.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;  // targets.sh: -max_len
  auto volume = std::make_shared<fuzz::TwoPartDevice>(data, size, uint64_t{64} << 20);
  try {
    auto fs = volume::open_ext(volume);
    fuzz::exercise_filesystem(*fs);
  } catch (const Error&) {
  }
  return 0;
}
