// libFuzzer target for the FAT reader: boot sector, FAT chains, directories with
// long names, file reads and used ranges, over the input placed in a 64 MiB volume (filesystem_fuzz.h).
#include "tests/fuzz/filesystem_fuzz.h"
#include "volume/readers.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;  // targets.sh: -max_len
  auto volume = std::make_shared<fuzz::TwoPartDevice>(data, size, uint64_t{64} << 20);
  try {
    auto fs = volume::open_fat(volume);
    fuzz::exercise_filesystem(*fs);
  } catch (const Error&) {
  }
  return 0;
}
