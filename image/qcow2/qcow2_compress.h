// Compression of single qcow2 clusters: raw deflate (window 2^12, as QEMU) or zstd.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "image/qcow2/qcow2_format.h"

namespace arche::image::qcow2 {

// Returns the compressed cluster, or an empty vector when it would take more than
// max_length bytes (the caller then stores the cluster uncompressed).
std::vector<uint8_t> compress_cluster(CompressionType type, std::span<const uint8_t> cluster, size_t max_length);

// Decompresses into out (exactly one cluster). `in` may carry trailing bytes after
// the compressed stream. Throws a corrupt error when the stream is damaged or short.
void decompress_cluster(CompressionType type, std::span<const uint8_t> in, std::span<uint8_t> out);

}  // namespace arche::image::qcow2
