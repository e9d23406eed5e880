// libFuzzer target for VHDX: headers, region tables, metadata (with parent
// locators), the log (replayed in memory read-only, into the copy read-write), BAT,
// sector bitmaps, reads, writes on a copy, check and repair, resize (the first byte
// picks those: fuzz_common.h).
//
// The image is cut into 4 KiB parts placed where qemu-img puts the structures of
// a small dynamic VHDX (kLayout) in a sparse 16 MiB file, without megabytes of
// zeros in every input; seeds.sh cuts real images the same way.
#include "image/vhdx/vhdx_format.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;
// File identifier, the two headers, the two region tables; log entries; BAT;
// metadata table and items; the first data blocks.
const fuzz::Layout kLayout{{0, 64 * KiB, 128 * KiB, 192 * KiB, 256 * KiB, 1 * MiB, 1 * MiB + 4 * KiB, 1 * MiB + 8 * KiB,
                            1 * MiB + 12 * KiB, 2 * MiB, 3 * MiB, 3 * MiB + 64 * KiB, 8 * MiB, 9 * MiB},
                           16 * MiB};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  const std::span<const uint8_t> image(data + 1, size - 1);
  fuzz::attempt([&] { image::vhdx::parse_header(image, "fuzz"); });
  fuzz::attempt([&] { image::vhdx::parse_region_table(image, "fuzz"); });
  fuzz::attempt([&] { image::vhdx::parse_metadata(image, "fuzz"); });
  fuzz::run_all(data, size, "vhdx", kLayout);
  return 0;
}
