#include "image/qcow2/qcow2_compress.h"

#include <zlib.h>
#include <zstd.h>

#include <memory>

#include "core/error.h"

namespace arche::image::qcow2 {

namespace {

constexpr int kDeflateWindowBits = -12;  // raw deflate, 4 KiB window: what QEMU writes
constexpr int kZstdLevel = 3;            // QEMU's default

struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread: creating them costs more than compressing a cluster.
ZSTD_CCtx* zstd_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* zstd_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

std::vector<uint8_t> deflate_cluster(std::span<const uint8_t> in, size_t max_length) {
  z_stream s{};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kDeflateWindowBits, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    fail(ErrorCategory::internal, "zlib: deflateInit2 failed");
  std::vector<uint8_t> out(max_length);
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&s, Z_FINISH);
  size_t produced = out.size() - s.avail_out;
  deflateEnd(&s);
  if (rc != Z_STREAM_END) return {};  // did not fit: not worth compressing
  out.resize(produced);
  return out;
}

void inflate_cluster(std::span<const uint8_t> in, std::span<uint8_t> out) {
  z_stream s{};
  if (inflateInit2(&s, kDeflateWindowBits) != Z_OK) fail(ErrorCategory::internal, "zlib: inflateInit2 failed");
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&s, Z_FINISH);
  size_t produced = out.size() - s.avail_out;
  inflateEnd(&s);
  bool ok = (rc == Z_STREAM_END || rc == Z_BUF_ERROR || rc == Z_OK) && produced == out.size();
  if (!ok) fail(ErrorCategory::corrupt, "compressed cluster is damaged (deflate: {})", rc == Z_DATA_ERROR ? "bad data" : "short");
}

std::vector<uint8_t> zstd_cluster(std::span<const uint8_t> in, size_t max_length) {
  std::vector<uint8_t> out(max_length);
  size_t n = ZSTD_compressCCtx(zstd_cctx(), out.data(), out.size(), in.data(), in.size(), kZstdLevel);
  if (ZSTD_isError(n)) return {};  // dstSize_tooSmall: not worth compressing
  out.resize(n);
  return out;
}

void unzstd_cluster(std::span<const uint8_t> in, std::span<uint8_t> out) {
  ZSTD_DCtx* d = zstd_dctx();
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  ZSTD_outBuffer output{out.data(), out.size(), 0};
  while (output.pos < output.size) {
    size_t in_before = input.pos, out_before = output.pos;
    size_t rc = ZSTD_decompressStream(d, &output, &input);
    if (ZSTD_isError(rc))
      fail(ErrorCategory::corrupt, "compressed cluster is damaged (zstd: {})", ZSTD_getErrorName(rc));
    if (rc == 0) break;                                                // frame complete
    if (input.pos == in_before && output.pos == out_before) break;  // no progress: input ran out
  }
  if (output.pos != output.size)
    fail(ErrorCategory::corrupt, "compressed cluster is damaged (zstd: {} of {} bytes)", output.pos, output.size);
}

}  // namespace

std::vector<uint8_t> compress_cluster(CompressionType type, std::span<const uint8_t> cluster, size_t max_length) {
  return type == CompressionType::zstd ? zstd_cluster(cluster, max_length) : deflate_cluster(cluster, max_length);
}

void decompress_cluster(CompressionType type, std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (type == CompressionType::zstd) unzstd_cluster(in, out);
  else inflate_cluster(in, out);
}

}  // namespace arche::image::qcow2
