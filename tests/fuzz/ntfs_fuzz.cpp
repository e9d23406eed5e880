// libFuzzer target for the NTFS wrapper (libntfs-3g on ntfs_reader.cpp's device
// operations: MFT records, indexes, runlists, named streams, file reads, used
// ranges) over a crafted volume: the input placed in a 64 MiB volume
// (filesystem_fuzz.h). Only the wrapper is instrumented: libntfs-3g is the system's.
#include "tests/fuzz/filesystem_fuzz.h"
#include "volume/readers.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;  // targets.sh: -max_len
  auto volume = std::make_shared<fuzz::TwoPartDevice>(data, size, uint64_t{64} << 20);
  try {
    auto fs = volume::open_ntfs(volume);
    fuzz::exercise_filesystem(*fs);
  } catch (const Error&) {
  }
  return 0;
}
