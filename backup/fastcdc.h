// Content-defined chunking of files: FastCDC (Xia et al., USENIX ATC 2016) with
// normalised chunking. A gear hash rolls over the data; a cut is made where its top
// bits are zero. Below the normal size a stricter mask (more bits) is used and above
// it a looser one, which pulls chunk sizes towards the normal size. The first `min`
// bytes of a chunk are skipped without hashing (the speed trick of FastCDC).
//
// The gear table comes from a secret of the repository, so chunk boundaries, and
// with them the sizes of stored chunks, do not reveal which known file was backed up.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace arche::backup {

struct CdcParams {
  uint32_t min_size;
  uint32_t avg_size;  // a power of two
  uint32_t max_size;
};

class FastCdc {
 public:
  // `seed`: 64 secret bytes (RepoKeys::chunker_seed).
  FastCdc(const CdcParams& params, std::span<const uint8_t> seed);

  // Length of the chunk at the start of `data`. When `data` is shorter than max_size
  // and `final` is false, returns 0 if no cut point was found (give more data); with
  // `final` the rest is a chunk.
  size_t cut(std::span<const uint8_t> data, bool final) const;

  const CdcParams& params() const { return params_; }

 private:
  CdcParams params_;
  uint64_t mask_small_;  // used below the normal size: harder to match
  uint64_t mask_large_;  // used above it: easier to match
  std::array<uint64_t, 256> gear_;
};

}  // namespace arche::backup
