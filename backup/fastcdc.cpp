#include "backup/fastcdc.h"

#include <sodium.h>

#include <cstring>

#include "core/error.h"

namespace arche::backup {

namespace {

// A mask of `bits` ones in the top of the word: the top bits of the gear hash depend
// on the last 64 bytes, the low ones only on the last few.
uint64_t top_bits(unsigned bits) { return bits == 0 ? 0 : ~uint64_t{0} << (64 - bits); }

unsigned log2_exact(uint32_t v) {
  unsigned n = 0;
  while ((uint32_t{1} << n) < v) ++n;
  return n;
}

}  // namespace

FastCdc::FastCdc(const CdcParams& params, std::span<const uint8_t> seed) : params_(params) {
  if (params.min_size == 0 || params.min_size >= params.avg_size || params.avg_size >= params.max_size ||
      (params.avg_size & (params.avg_size - 1)))
    fail(ErrorCategory::internal, "FastCDC parameters {}/{}/{}", params.min_size, params.avg_size, params.max_size);
  if (seed.size() < 32) fail(ErrorCategory::internal, "FastCDC seed too short");
  // Normalisation level 2, as recommended by the paper: two bits either side.
  const unsigned bits = log2_exact(params.avg_size);
  mask_small_ = top_bits(bits + 2);
  mask_large_ = top_bits(bits - 2);
  // The gear table: 2 KiB of ChaCha20 key stream under the secret seed.
  static_assert(crypto_stream_chacha20_KEYBYTES == 32);
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {'g', 'e', 'a', 'r', 't', 'b', 'l', '1'};
  crypto_stream_chacha20(reinterpret_cast<unsigned char*>(gear_.data()), sizeof gear_, nonce, seed.data());
}

size_t FastCdc::cut(std::span<const uint8_t> data, bool final) const {
  const size_t n = data.size();
  if (n <= params_.min_size) return final ? n : 0;
  const size_t limit = std::min<size_t>(n, params_.max_size);
  const size_t normal = std::min<size_t>(limit, params_.avg_size);
  const uint8_t* p = data.data();
  uint64_t hash = 0;
  size_t i = params_.min_size;
  for (; i < normal; ++i) {
    hash = (hash << 1) + gear_[p[i]];
    if (!(hash & mask_small_)) return i + 1;
  }
  for (; i < limit; ++i) {
    hash = (hash << 1) + gear_[p[i]];
    if (!(hash & mask_large_)) return i + 1;
  }
  if (limit == params_.max_size) return limit;
  return final ? n : 0;
}

}  // namespace arche::backup
