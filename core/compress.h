// Whole-buffer compression for every module: deflate (raw RFC 1951 and zlib RFC 1950
// streams, as qcow2 clusters and VMDK grains hold them) and zstd (qcow2 clusters,
// backup chunks and repository files).
//
// Deflate goes through libdeflate, which works on whole buffers only and is several
// times faster than zlib's streaming code at the same ratio; zlib remains only as the
// lenient reader of deflate streams libdeflate refuses (see Expect::prefix). zstd
// keeps one context per thread: creating one costs more than compressing a cluster.
//
// Thread safety: every function may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace arche::compress {

enum class Codec : uint8_t {
  deflate,  // raw deflate stream (RFC 1951): qcow2's "zlib" clusters
  zlib,     // deflate in a zlib wrapper with Adler-32 (RFC 1950): VMDK grains
  zstd,     // one zstd frame
};
const char* to_string(Codec codec);

// Levels: deflate and zlib 0..12 (libdeflate's scale: 0 stores, 1 is the fastest, 6 about
// zlib's default ratio); zstd its own range, negative levels being its fast modes.
constexpr int kMinDeflateLevel = 0;
constexpr int kMaxDeflateLevel = 12;
constexpr int kMinZstdLevel = -7;
constexpr int kMaxZstdLevel = 19;

// Space that always suffices for compressing `size` bytes.
size_t bound(Codec codec, size_t size);

// Compresses `in` into `out`; returns the compressed length, or 0 when the result
// does not fit into out.size() bytes (the caller then stores the data plainly: give
// out the size above which compression does not pay, and it stops early).
size_t compress_into(Codec codec, int level, std::span<const uint8_t> in, std::span<uint8_t> out);
// Compresses into a new buffer of bound() bytes, trimmed to the result.
std::vector<uint8_t> compress(Codec codec, int level, std::span<const uint8_t> in);

// What a decompression must produce.
enum class Expect : uint8_t {
  exactly,  // the stream holds exactly out.size() bytes
  at_most,  // at most out.size() bytes; a stream that holds more is damaged
  prefix,   // out.size() bytes; a stream may go on beyond them (QEMU reads qcow2
            // clusters this way), one that ends before is damaged
};

// Decompresses `in` into `out`; returns the bytes produced. `in` may hold bytes after
// the end of the stream. Throws a corrupt error starting with `what` when the stream
// is damaged or does not give what `expect` asks.
size_t decompress_into(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out, Expect expect,
                       const std::string& what);

// The uncompressed size a zstd frame records in its header. Throws a corrupt error
// when it records none or more than `max_size` (a damaged or crafted length must
// not make the caller allocate gigabytes).
size_t zstd_content_size(std::span<const uint8_t> in, size_t max_size, const std::string& what);

}  // namespace arche::compress
