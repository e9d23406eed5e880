#include "backup/codec.h"

#include "core/error.h"

namespace arche::backup {

size_t compress_bound(size_t size) { return compress::bound(compress::Codec::zstd, size); }

size_t compress_into(std::span<uint8_t> out, std::span<const uint8_t> in, int level) {
  if (out.size() < compress_bound(in.size())) fail(ErrorCategory::internal, "zstd: output buffer below the bound");
  return compress::compress_into(compress::Codec::zstd, level, in, out);
}

std::vector<uint8_t> compress(std::span<const uint8_t> in, int level) {
  return compress::compress(compress::Codec::zstd, level, in);
}

size_t decompressed_size(std::span<const uint8_t> in, size_t max_size, const std::string& what) {
  return compress::zstd_content_size(in, max_size, what);
}

void decompress_into(std::span<uint8_t> out, std::span<const uint8_t> in, const std::string& what) {
  compress::decompress_into(compress::Codec::zstd, in, out, compress::Expect::exactly, what);
}

std::vector<uint8_t> decompress(std::span<const uint8_t> in, size_t max_size, const std::string& what) {
  std::vector<uint8_t> out(decompressed_size(in, max_size, what));
  decompress_into(out, in, what);
  return out;
}

}  // namespace arche::backup
