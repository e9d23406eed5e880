#include "backup/codec.h"

#include <zstd.h>

#include <memory>

#include "core/error.h"

namespace arche::backup {

namespace {

struct CctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> ctx(ZSTD_createCCtx());
  if (!ctx) fail(ErrorCategory::no_space, "zstd: cannot create a compression context");
  return ctx.get();
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> ctx(ZSTD_createDCtx());
  if (!ctx) fail(ErrorCategory::no_space, "zstd: cannot create a decompression context");
  return ctx.get();
}

}  // namespace

size_t compress_bound(size_t size) { return ZSTD_compressBound(size); }

size_t compress_into(std::span<uint8_t> out, std::span<const uint8_t> in, int level) {
  size_t n = ZSTD_compressCCtx(thread_cctx(), out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n)) fail(ErrorCategory::internal, "zstd compression failed: {}", ZSTD_getErrorName(n));
  return n;
}

std::vector<uint8_t> compress(std::span<const uint8_t> in, int level) {
  std::vector<uint8_t> out(compress_bound(in.size()));
  out.resize(compress_into(out, in, level));
  return out;
}

size_t decompressed_size(std::span<const uint8_t> in, size_t max_size, const std::string& what) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    fail(ErrorCategory::corrupt, "{}: not a zstd frame with a recorded size", what);
  if (size > max_size) fail(ErrorCategory::corrupt, "{}: claims {} bytes uncompressed (at most {})", what, size, max_size);
  return static_cast<size_t>(size);
}

void decompress_into(std::span<uint8_t> out, std::span<const uint8_t> in, const std::string& what) {
  size_t n = ZSTD_decompressDCtx(thread_dctx(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) fail(ErrorCategory::corrupt, "{}: zstd: {}", what, ZSTD_getErrorName(n));
  if (n != out.size()) fail(ErrorCategory::corrupt, "{}: decompressed to {} bytes, expected {}", what, n, out.size());
}

std::vector<uint8_t> decompress(std::span<const uint8_t> in, size_t max_size, const std::string& what) {
  std::vector<uint8_t> out(decompressed_size(in, max_size, what));
  decompress_into(out, in, what);
  return out;
}

}  // namespace arche::backup
