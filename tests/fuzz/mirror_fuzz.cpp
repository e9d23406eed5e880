// libFuzzer target for the mirror's metadata: superblock and bitmap page decoding,
// then the input as a whole leg (seeds are real legs made by `arche raid create`):
// assembly, status, reads through the checksums read-only, and on a copy writes, a
// scrub and a close (when the first byte has fuzz::kWrite). The leg comes in two
// parts (fuzz_common.h). Any input must end in success or an arche::Error.
#include "core/log.h"
#include "image/mirror/assemble.h"
#include "image/mirror/mirror_format.h"
#include "image/mirror/status.h"
#include "tests/fuzz/fuzz_common.h"

using namespace arche;
using image::mirror::MirrorOptions;

namespace {

void exercise(const std::string& path, bool writable) {
  MirrorOptions o;
  o.exact_legs = true;  // never follow the paths a fuzzed superblock records
  o.writable = writable;
  o.table_cache_bytes = 64 << 10;
  o.bitmap_clear_delay = std::chrono::nanoseconds(0);
  auto dev = image::mirror::open_mirror({path}, o);
  (void)image::mirror::to_json(dev->status());
  const uint64_t size = dev->size();
  std::vector<uint8_t> buf(65536);
  for (const auto& e : dev->map()) {
    try {
      dev->read(e.offset, std::span(buf.data(), std::min<uint64_t>(e.length, buf.size())));
    } catch (const Error&) {  // a block bad on every leg: one error, and on with the next
    }
  }
  if (!writable) return;
  std::vector<uint8_t> pattern(5000, 0x5a);
  if (size >= pattern.size() + 100) dev->write(100, pattern);
  dev->write_zeroes(size / 2, std::min<uint64_t>(size / 2, 9000), true);
  dev->discard(0, size);
  dev->flush();
  dev->scrub(false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > fuzz::kMaxImageInput) return 0;
  set_log_level(LogLevel::quiet);
  const uint8_t steps = data[0];
  const std::span<const uint8_t> leg(data + 1, size - 1);
  static fuzz::MemoryFile file("fuzz-leg");
  fuzz::attempt([&] {
    image::mirror::decode_superblock(leg.first(std::min<size_t>(leg.size(), image::mirror::kSuperblockSlot)), "fuzz");
  });
  if (leg.size() >= image::mirror::kBitmapPage) {
    std::vector<uint8_t> bits(image::mirror::kBitmapPage);
    uint64_t cleared = 0;
    (void)image::mirror::decode_bitmap_page({}, 0, leg.first(image::mirror::kBitmapPage), bits, cleared);
  }
  fuzz::attempt([&] { exercise(file.fill(leg, {}), false); });
  if (steps & fuzz::kWrite) fuzz::attempt([&] { exercise(file.fill(leg, {}), true); });
  return 0;
}
