#include "image/ops/compare.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/bytes.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/format.h"

namespace arche::image {

namespace {

constexpr uint64_t kWindow = 4 * MiB;

uint64_t first_mismatch(const uint8_t* a, const uint8_t* b, uint64_t n) {
  uint64_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

CompareResult compare(const std::string& path_a, const std::string& path_b, const CompareOptions& options) {
  OpenOptions oa, ob;
  oa.format = options.format_a;
  ob.format = options.format_b;
  oa.force_share = ob.force_share = options.force_share;
  std::unique_ptr<BlockDevice> a = open_image(path_a, oa);
  std::unique_ptr<BlockDevice> b = open_image(path_b, ob);
  CompareResult result;
  const uint64_t common = std::min(a->size(), b->size());
  if (options.strict && a->size() != b->size()) {
    result.equal = false;
    result.reason = fmt::format("Strict mode: Image size mismatch! ({} vs {} bytes)", a->size(), b->size());
    return result;
  }

  Progress progress("compare", std::max(a->size(), b->size()));
  std::vector<uint8_t> buf_a(kWindow), buf_b(kWindow);
  for (uint64_t pos = 0; pos < common; pos += kWindow) {
    interrupt::check();
    uint64_t n = std::min(kWindow, common - pos);
    progress.add(n);
    if (a->known_zero(pos, n) && b->known_zero(pos, n)) continue;
    a->read(pos, std::span(buf_a.data(), n));
    b->read(pos, std::span(buf_b.data(), n));
    if (std::memcmp(buf_a.data(), buf_b.data(), n) != 0) {
      uint64_t at = pos + first_mismatch(buf_a.data(), buf_b.data(), n);
      return {false, at, fmt::format("Content mismatch at offset {}!", at)};
    }
  }
  // The longer image must read as zeros beyond the shorter one.
  BlockDevice* longer = a->size() > b->size() ? a.get() : b.get();
  for (uint64_t pos = common; pos < longer->size(); pos += kWindow) {
    interrupt::check();
    uint64_t n = std::min(kWindow, longer->size() - pos);
    progress.add(n);
    if (longer->known_zero(pos, n)) continue;
    longer->read(pos, std::span(buf_a.data(), n));
    if (!all_zero(std::span(buf_a.data(), n))) {
      uint64_t at = pos;
      while (buf_a[at - pos] == 0) ++at;
      return {false, at, fmt::format("Content mismatch at offset {}!", at)};
    }
  }
  progress.finish();
  return result;
}

}  // namespace arche::image
