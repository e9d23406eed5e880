#include "core/compress.h"

#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <climits>
#include <memory>

#include "core/error.h"

namespace arche::compress {

namespace {

struct DeflateCompressorFree {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
struct DeflateDecompressorFree {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};
struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Per-thread state: a libdeflate compressor is bound to one level.
libdeflate_compressor* deflate_compressor(int level) {
  if (level < kMinDeflateLevel || level > kMaxDeflateLevel)
    fail(ErrorCategory::internal, "deflate level {} outside {}..{}", level, kMinDeflateLevel, kMaxDeflateLevel);
  thread_local std::array<std::unique_ptr<libdeflate_compressor, DeflateCompressorFree>, kMaxDeflateLevel + 1> by_level;
  auto& c = by_level[static_cast<size_t>(level)];
  if (!c) c.reset(libdeflate_alloc_compressor(level));
  if (!c) fail(ErrorCategory::no_space, "libdeflate: cannot allocate a compressor");
  return c.get();
}

libdeflate_decompressor* deflate_decompressor() {
  thread_local std::unique_ptr<libdeflate_decompressor, DeflateDecompressorFree> d(libdeflate_alloc_decompressor());
  if (!d) fail(ErrorCategory::no_space, "libdeflate: cannot allocate a decompressor");
  return d.get();
}

ZSTD_CCtx* zstd_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> c(ZSTD_createCCtx());
  if (!c) fail(ErrorCategory::no_space, "zstd: cannot create a compression context");
  return c.get();
}

ZSTD_DCtx* zstd_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> d(ZSTD_createDCtx());
  if (!d) fail(ErrorCategory::no_space, "zstd: cannot create a decompression context");
  return d.get();
}

[[noreturn]] void fail_short(const std::string& what, size_t produced, size_t wanted) {
  fail(ErrorCategory::corrupt, "{}: the compressed stream ends after {} of {} bytes", what, produced, wanted);
}
[[noreturn]] void fail_long(const std::string& what, size_t room) {
  fail(ErrorCategory::corrupt, "{}: the compressed stream holds more than {} bytes", what, room);
}

// zlib's inflate in one call, for the streams libdeflate refuses although QEMU reads
// them: a cluster's stream that goes on past the cluster, or is cut short after it
// produced the whole cluster. True when `out` was filled.
bool inflate_prefix(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out) {
  z_stream s{};
  if (inflateInit2(&s, codec == Codec::deflate ? -MAX_WBITS : MAX_WBITS) != Z_OK)
    fail(ErrorCategory::no_space, "zlib: cannot allocate an inflate state");
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT_MAX));
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&s, Z_FINISH);
  bool filled = s.avail_out == 0 && (rc == Z_STREAM_END || rc == Z_BUF_ERROR || rc == Z_OK);
  inflateEnd(&s);
  return filled;
}

size_t inflate_into(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out, Expect expect,
                    const std::string& what) {
  size_t used = 0, produced = 0;
  libdeflate_result r =
      codec == Codec::deflate
          ? libdeflate_deflate_decompress_ex(deflate_decompressor(), in.data(), in.size(), out.data(), out.size(),
                                             &used, &produced)
          : libdeflate_zlib_decompress_ex(deflate_decompressor(), in.data(), in.size(), out.data(), out.size(), &used,
                                          &produced);
  if (r == LIBDEFLATE_SUCCESS) {
    if (expect != Expect::at_most && produced != out.size()) fail_short(what, produced, out.size());
    return produced;
  }
  if (expect == Expect::prefix && inflate_prefix(codec, in, out)) return out.size();
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE) fail_long(what, out.size());
  fail(ErrorCategory::corrupt, "{}: the {} stream is damaged or cut short", what, to_string(codec));
}

// The bytes a stream gives until `out` is full or its frame ends; the input may end
// early or carry bytes after the frame.
size_t unzstd_stream(std::span<const uint8_t> in, std::span<uint8_t> out, bool* frame_ended, const std::string& what) {
  ZSTD_DCtx* d = zstd_dctx();
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  ZSTD_outBuffer output{out.data(), out.size(), 0};
  *frame_ended = false;
  while (output.pos < output.size) {
    size_t in_before = input.pos, out_before = output.pos;
    size_t rc = ZSTD_decompressStream(d, &output, &input);
    if (ZSTD_isError(rc)) fail(ErrorCategory::corrupt, "{}: zstd: {}", what, ZSTD_getErrorName(rc));
    if (rc == 0) {
      *frame_ended = true;
      break;
    }
    if (input.pos == in_before && output.pos == out_before) break;  // no progress: input ran out
  }
  return output.pos;
}

size_t unzstd_into(std::span<const uint8_t> in, std::span<uint8_t> out, Expect expect, const std::string& what) {
  if (expect == Expect::prefix) {
    bool ended = false;
    size_t n = unzstd_stream(in, out, &ended, what);
    if (n != out.size()) fail_short(what, n, out.size());
    return n;
  }
  // One frame, decoded in one call straight into `out`.
  size_t frame = ZSTD_findFrameCompressedSize(in.data(), in.size());
  if (ZSTD_isError(frame)) fail(ErrorCategory::corrupt, "{}: zstd: {}", what, ZSTD_getErrorName(frame));
  size_t n = ZSTD_decompressDCtx(zstd_dctx(), out.data(), out.size(), in.data(), frame);
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) fail_long(what, out.size());
    fail(ErrorCategory::corrupt, "{}: zstd: {}", what, ZSTD_getErrorName(n));
  }
  if (expect == Expect::exactly && n != out.size()) fail_short(what, n, out.size());
  return n;
}

}  // namespace

const char* to_string(Codec codec) {
  switch (codec) {
    case Codec::deflate: return "deflate";
    case Codec::zlib: return "zlib";
    case Codec::zstd: return "zstd";
  }
  return "?";
}

size_t bound(Codec codec, size_t size) {
  switch (codec) {
    // libdeflate's bounds do not depend on the compressor (NULL: any level).
    case Codec::deflate: return libdeflate_deflate_compress_bound(nullptr, size);
    case Codec::zlib: return libdeflate_zlib_compress_bound(nullptr, size);
    case Codec::zstd: return ZSTD_compressBound(size);
  }
  return 0;
}

size_t compress_into(Codec codec, int level, std::span<const uint8_t> in, std::span<uint8_t> out) {
  switch (codec) {
    case Codec::deflate:
      return libdeflate_deflate_compress(deflate_compressor(level), in.data(), in.size(), out.data(), out.size());
    case Codec::zlib:
      return libdeflate_zlib_compress(deflate_compressor(level), in.data(), in.size(), out.data(), out.size());
    case Codec::zstd: {
      if (level < kMinZstdLevel || level > kMaxZstdLevel)
        fail(ErrorCategory::internal, "zstd level {} outside {}..{}", level, kMinZstdLevel, kMaxZstdLevel);
      size_t n = ZSTD_compressCCtx(zstd_cctx(), out.data(), out.size(), in.data(), in.size(), level);
      if (!ZSTD_isError(n)) return n;
      if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return 0;
      fail(ErrorCategory::internal, "zstd compression failed: {}", ZSTD_getErrorName(n));
    }
  }
  return 0;
}

std::vector<uint8_t> compress(Codec codec, int level, std::span<const uint8_t> in) {
  std::vector<uint8_t> out(bound(codec, in.size()));
  out.resize(compress_into(codec, level, in, out));
  return out;
}

size_t decompress_into(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out, Expect expect,
                       const std::string& what) {
  return codec == Codec::zstd ? unzstd_into(in, out, expect, what) : inflate_into(codec, in, out, expect, what);
}

size_t zstd_content_size(std::span<const uint8_t> in, size_t max_size, const std::string& what) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    fail(ErrorCategory::corrupt, "{}: not a zstd frame with a recorded size", what);
  if (size > max_size) fail(ErrorCategory::corrupt, "{}: claims {} bytes uncompressed (at most {})", what, size, max_size);
  return static_cast<size_t>(size);
}

}  // namespace arche::compress
