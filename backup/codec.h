// zstd compression of chunks and repository files (core/compress.h does the work).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/compress.h"

namespace arche::backup {

// Levels arche accepts (zstd's range; negative levels are zstd's fast modes).
constexpr int kMinCompressionLevel = compress::kMinZstdLevel;
constexpr int kMaxCompressionLevel = compress::kMaxZstdLevel;

// Compresses `in` into `out` (which must hold compress_bound(in.size()) bytes);
// returns the compressed size.
size_t compress_into(std::span<uint8_t> out, std::span<const uint8_t> in, int level);
size_t compress_bound(size_t size);
std::vector<uint8_t> compress(std::span<const uint8_t> in, int level);

// Decompresses one zstd frame whose content size is recorded in it. Refuses frames
// that claim more than `max_size` bytes (a damaged or crafted length must not make
// arche allocate gigabytes) and frames that do not decompress to the claimed size.
std::vector<uint8_t> decompress(std::span<const uint8_t> in, size_t max_size, const std::string& what);
// Into a caller's buffer of exactly the expected size.
void decompress_into(std::span<uint8_t> out, std::span<const uint8_t> in, const std::string& what);
// The content size a zstd frame records, or throws a corrupt error.
size_t decompressed_size(std::span<const uint8_t> in, size_t max_size, const std::string& what);

}  // namespace arche::backup
