#include "hv/boot/kernel_payload.h"

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::hv {

namespace {

constexpr uint64_t max_vmlinux = 512 * MiB;  // bounded memory on a bad image

std::vector<uint8_t> inflate_gzip(std::span<const uint8_t> in, uint64_t expected) {
  std::vector<uint8_t> out(expected);
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) fail(ErrorCategory::internal, "kernel: zlib init failed");
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_FINISH);
  uint64_t produced = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != expected) fail(ErrorCategory::format, "kernel: gzip payload is damaged");
  return out;
}

std::vector<uint8_t> inflate_zstd(std::span<const uint8_t> in, uint64_t expected) {
  std::vector<uint8_t> out(expected);
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  size_t rc;
  do {
    rc = ZSTD_decompressStream(ctx, &dst, &src);
  } while (!ZSTD_isError(rc) && rc != 0 && dst.pos < dst.size && src.pos < src.size);
  ZSTD_freeDCtx(ctx);
  if (ZSTD_isError(rc) || dst.pos != expected) fail(ErrorCategory::format, "kernel: zstd payload is damaged");
  return out;
}

std::vector<uint8_t> inflate_xz(std::span<const uint8_t> in, uint64_t expected) {
  std::vector<uint8_t> out(expected);
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
    fail(ErrorCategory::internal, "kernel: xz init failed");
  s.next_in = in.data();
  s.avail_in = in.size();
  s.next_out = out.data();
  s.avail_out = out.size();
  lzma_ret rc = lzma_code(&s, LZMA_FINISH);
  uint64_t produced = s.total_out;
  lzma_end(&s);
  if ((rc != LZMA_STREAM_END && rc != LZMA_OK) || produced != expected)
    fail(ErrorCategory::format, "kernel: xz payload is damaged");
  return out;
}

// LZ4 legacy frame: magic, then blocks of (le32 compressed size, data), each
// inflating to at most 8 MiB.
std::vector<uint8_t> inflate_lz4_legacy(std::span<const uint8_t> in, uint64_t expected) {
  constexpr uint32_t magic = 0x184c2102;
  constexpr size_t block_max = 8 * MiB;
  std::vector<uint8_t> out(expected);
  size_t pos = 4, done = 0;
  while (done < expected) {
    if (pos + 4 > in.size()) fail(ErrorCategory::format, "kernel: lz4 payload ends early");
    uint32_t size = load_le32(in.data() + pos);
    pos += 4;
    if (size == magic) continue;  // concatenated frame
    if (size > in.size() - pos || size > static_cast<uint32_t>(LZ4_compressBound(block_max)))
      fail(ErrorCategory::format, "kernel: lz4 block of {} bytes reaches beyond the payload", size);
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos), reinterpret_cast<char*>(out.data() + done),
                                static_cast<int>(size), static_cast<int>(std::min(block_max, expected - done)));
    if (n < 0) fail(ErrorCategory::format, "kernel: lz4 payload is damaged");
    pos += size;
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace

std::optional<KernelPayload> decompress_kernel_payload(std::span<const uint8_t> bz) {
  if (bz.size() < 0x250) return std::nullopt;
  unsigned setup_sects = bz[0x1f1] ? bz[0x1f1] : 4;
  uint64_t base = (uint64_t(setup_sects) + 1) * 512;
  uint64_t offset = load_le32(&bz[0x248]), length = load_le32(&bz[0x24c]);
  if (length < 8 || !range_within(base + offset, length, bz.size())) return std::nullopt;
  std::span<const uint8_t> p = bz.subspan(base + offset, length);
  // The kernel build appends the uncompressed size (le32) to every payload.
  uint64_t expected = load_le32(p.data() + p.size() - 4);
  if (expected == 0 || expected > max_vmlinux) return std::nullopt;
  KernelPayload out;
  if (p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e)) {
    out.compression = "gzip";
    out.vmlinux = inflate_gzip(p, expected);
  } else if (load_le32(p.data()) == 0xfd2fb528) {
    out.compression = "zstd";
    out.vmlinux = inflate_zstd(p.first(p.size() - 4), expected);
  } else if (std::memcmp(p.data(), "\xfd" "7zXZ", 6) == 0) {
    out.compression = "xz";
    out.vmlinux = inflate_xz(p.first(p.size() - 4), expected);
  } else if (load_le32(p.data()) == 0x184c2102) {
    out.compression = "lz4";
    out.vmlinux = inflate_lz4_legacy(p.first(p.size() - 4), expected);
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace arche::hv
