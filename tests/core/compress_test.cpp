// core/compress: round trips, the "does not fit" answer, the three decompression
// expectations, and interchange with zlib as QEMU and VMware use it.
#include "core/compress.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>

#include "core/error.h"

namespace arche::compress {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Text-like data that compresses about 3:1.
std::vector<uint8_t> compressible(size_t n) {
  static const char* words[] = {"invoice ", "Mueller ", "GmbH ", "total ", "EUR ", "\n", "2026-11-21 ", "paid "};
  std::mt19937 rng(7);
  std::vector<uint8_t> v;
  while (v.size() < n) {
    const char* w = words[rng() % 8];
    v.insert(v.end(), w, w + strlen(w));
  }
  v.resize(n);
  return v;
}

// A random block repeated at a period above QEMU's 4 KiB deflate window, so the
// compressed stream refers back farther than QEMU's own writer ever does.
std::vector<uint8_t> long_distance_repeats(size_t n) {
  std::vector<uint8_t> block = random_bytes(10000, 3), v(n);
  for (size_t i = 0; i < n; ++i) v[i] = block[i % block.size()];
  return v;
}

class CompressRoundTrip : public testing::TestWithParam<std::tuple<Codec, int>> {};

TEST_P(CompressRoundTrip, GivesBackWhatWentIn) {
  auto [codec, level] = GetParam();
  for (const std::vector<uint8_t>& in : {compressible(65536), random_bytes(65536, 1), long_distance_repeats(1 << 20),
                                         std::vector<uint8_t>(4096, 0), std::vector<uint8_t>{}}) {
    std::vector<uint8_t> packed = compress(codec, level, in);
    ASSERT_LE(packed.size(), bound(codec, in.size()));
    std::vector<uint8_t> out(in.size());
    EXPECT_EQ(decompress_into(codec, packed, out, Expect::exactly, "test"), in.size());
    EXPECT_EQ(out, in);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, CompressRoundTrip,
                         testing::Values(std::tuple{Codec::deflate, 1}, std::tuple{Codec::deflate, 6},
                                         std::tuple{Codec::deflate, 12}, std::tuple{Codec::zlib, 6},
                                         std::tuple{Codec::zstd, -3}, std::tuple{Codec::zstd, 3}));

TEST(Compress, CompressibleDataShrinks) {
  std::vector<uint8_t> in = compressible(1 << 20);
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) EXPECT_LT(compress(c, 1, in).size(), in.size() / 2) << to_string(c);
}

TEST(Compress, ReturnsZeroWhenTheResultDoesNotFit) {
  std::vector<uint8_t> in = random_bytes(65536, 2);
  std::vector<uint8_t> out(65536 - 512);  // qcow2's limit: a cluster less one sector
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) EXPECT_EQ(compress_into(c, 6, in, out), 0u) << to_string(c);
  std::vector<uint8_t> text = compressible(65536);
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) EXPECT_GT(compress_into(c, 3, text, out), 0u) << to_string(c);
}

TEST(Compress, ExpectationsOfTheOutputLength) {
  std::vector<uint8_t> in = compressible(8192);
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) {
    SCOPED_TRACE(to_string(c));
    std::vector<uint8_t> packed = compress(c, 6, in);
    std::vector<uint8_t> larger(16384), smaller(4096), exact(8192);
    // at_most: a shorter stream is fine, a longer one is damage.
    EXPECT_EQ(decompress_into(c, packed, larger, Expect::at_most, "t"), 8192u);
    EXPECT_TRUE(std::equal(in.begin(), in.end(), larger.begin()));
    EXPECT_THROW(decompress_into(c, packed, smaller, Expect::at_most, "t"), Error);
    // exactly: both are damage.
    EXPECT_THROW(decompress_into(c, packed, larger, Expect::exactly, "t"), Error);
    EXPECT_THROW(decompress_into(c, packed, smaller, Expect::exactly, "t"), Error);
    EXPECT_EQ(decompress_into(c, packed, exact, Expect::exactly, "t"), 8192u);
    // prefix (QEMU's reading of a cluster): the stream may go on, but must fill it.
    EXPECT_EQ(decompress_into(c, packed, smaller, Expect::prefix, "t"), 4096u);
    EXPECT_TRUE(std::equal(smaller.begin(), smaller.end(), in.begin()));
    EXPECT_THROW(decompress_into(c, packed, larger, Expect::prefix, "t"), Error);
  }
}

TEST(Compress, TrailingBytesAfterTheStreamAreIgnored) {
  std::vector<uint8_t> in = compressible(65536);
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) {
    std::vector<uint8_t> packed = compress(c, 6, in);
    packed.resize(packed.size() + 700, 0xa5);  // the rest of the last sector
    std::vector<uint8_t> out(in.size());
    EXPECT_EQ(decompress_into(c, packed, out, Expect::prefix, "t"), in.size()) << to_string(c);
    EXPECT_EQ(out, in);
  }
}

TEST(Compress, DamagedStreamsAreCorruptErrorsNamingWhat) {
  std::vector<uint8_t> in = compressible(65536);
  for (Codec c : {Codec::deflate, Codec::zlib, Codec::zstd}) {
    std::vector<uint8_t> packed = compress(c, 6, in);
    for (size_t i = packed.size() / 3; i < packed.size() / 3 + 64; ++i) packed[i] ^= 0x5a;
    std::vector<uint8_t> out(in.size());
    for (Expect e : {Expect::exactly, Expect::at_most, Expect::prefix}) {
      try {
        decompress_into(c, packed, out, e, "grain 7");
        // A flipped stretch may still decode to the right length by chance only
        // with deflate (no checksum); zlib and zstd check one.
        EXPECT_EQ(c, Codec::deflate) << "damage went unnoticed";
      } catch (const Error& err) {
        EXPECT_EQ(err.category(), ErrorCategory::corrupt);
        EXPECT_EQ(std::string(err.what()).rfind("grain 7: ", 0), 0u) << err.what();
      }
    }
    std::vector<uint8_t> cut = compress(c, 6, in);
    cut.resize(cut.size() / 2);
    EXPECT_THROW(decompress_into(c, cut, out, Expect::prefix, "t"), Error) << to_string(c);
  }
}

// What QEMU writes (raw deflate, 4 KiB window, zlib's default level) reads back, and
// what arche writes reads in QEMU's way: one inflate call with a 4 KiB window into
// a whole cluster, which resolves distances within the cluster up to 32 KiB.
TEST(Compress, RawDeflateInterchangesWithQemusZlibSettings) {
  for (bool long_distances : {false, true}) {
    const std::vector<uint8_t> cluster = long_distances ? long_distance_repeats(65536) : compressible(65536);
    z_stream s{};
    ASSERT_EQ(deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
    std::vector<uint8_t> qemu(deflateBound(&s, static_cast<uLong>(cluster.size())));
    s.next_in = const_cast<Bytef*>(cluster.data());
    s.avail_in = static_cast<uInt>(cluster.size());
    s.next_out = qemu.data();
    s.avail_out = static_cast<uInt>(qemu.size());
    ASSERT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
    qemu.resize(qemu.size() - s.avail_out);
    deflateEnd(&s);
    std::vector<uint8_t> out(cluster.size());
    decompress_into(Codec::deflate, qemu, out, Expect::prefix, "t");
    EXPECT_EQ(out, cluster);

    std::vector<uint8_t> ours = compress(Codec::deflate, 6, cluster);
    // Only back-references beyond 4 KiB compress this data: the stream uses them.
    if (long_distances) {
      EXPECT_LT(ours.size(), cluster.size() / 4);
    }
    std::vector<uint8_t> back(cluster.size());
    z_stream i{};
    ASSERT_EQ(inflateInit2(&i, -12), Z_OK);
    i.next_in = ours.data();
    i.avail_in = static_cast<uInt>(ours.size());
    i.next_out = back.data();
    i.avail_out = static_cast<uInt>(back.size());
    int rc = inflate(&i, Z_FINISH);
    inflateEnd(&i);
    EXPECT_EQ(rc, Z_STREAM_END);
    EXPECT_EQ(back, cluster);
  }
}

TEST(Compress, ZlibStreamsInterchangeWithZlib) {
  std::vector<uint8_t> grain = compressible(65536);
  uLongf n = compressBound(static_cast<uLong>(grain.size()));
  std::vector<uint8_t> theirs(n);
  ASSERT_EQ(compress2(theirs.data(), &n, grain.data(), static_cast<uLong>(grain.size()), 6), Z_OK);
  theirs.resize(n);
  std::vector<uint8_t> out(grain.size());
  EXPECT_EQ(decompress_into(Codec::zlib, theirs, out, Expect::at_most, "t"), grain.size());
  EXPECT_EQ(out, grain);

  std::vector<uint8_t> ours = compress(Codec::zlib, 6, grain), back(grain.size());
  uLongf back_n = static_cast<uLongf>(back.size());
  EXPECT_EQ(uncompress(back.data(), &back_n, ours.data(), static_cast<uLong>(ours.size())), Z_OK);
  EXPECT_EQ(back, grain);
}

TEST(Compress, ZstdContentSizeIsBounded) {
  std::vector<uint8_t> packed = compress(Codec::zstd, 1, compressible(100000));
  EXPECT_EQ(zstd_content_size(packed, 1 << 20, "t"), 100000u);
  EXPECT_THROW(zstd_content_size(packed, 99999, "t"), Error);
  std::vector<uint8_t> garbage = random_bytes(64, 9);
  EXPECT_THROW(zstd_content_size(garbage, 1 << 20, "t"), Error);
}

}  // namespace
}  // namespace arche::compress
