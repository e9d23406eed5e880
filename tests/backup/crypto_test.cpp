#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "backup/crypto.h"
#include "backup/key_slot.h"
#include "core/bytes.h"
#include "core/error.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

TEST(BackupCrypto, IdHexRoundTripsAndRejectsGarbage) {
  Id id = Id::random();
  EXPECT_EQ(Id::from_hex(id.hex()), id);
  EXPECT_EQ(id.hex().size(), 64u);
  EXPECT_EQ(id.short_hex(), id.hex().substr(0, 8));
  EXPECT_THROW(Id::from_hex("abc"), Error);
  EXPECT_THROW(Id::from_hex(std::string(64, 'g')), Error);
  EXPECT_TRUE(Id{}.is_zero());
  EXPECT_FALSE(id.is_zero());
}

TEST(BackupCrypto, ChunkIdsAreKeyedAndDeterministic) {
  RepoKeys a = RepoKeys::generate(), b = RepoKeys::generate();
  std::vector<uint8_t> data = arche::test::random_bytes(100000, 1);
  EXPECT_EQ(a.chunk_id(data), a.chunk_id(data));
  EXPECT_NE(a.chunk_id(data), b.chunk_id(data)) << "ids must depend on the repository key";
  // The id is not the unkeyed hash: knowing the data does not give the id.
  EXPECT_NE(a.chunk_id(data), content_hash(data));
  data[5] ^= 1;
  EXPECT_NE(a.chunk_id(data), b.chunk_id(data));
  // Same master, same keys.
  RepoKeys c(a.master());
  EXPECT_EQ(c.chunk_id(data), a.chunk_id(data));
  EXPECT_EQ(std::memcmp(c.encryption_key(), a.encryption_key(), kKeySize), 0);
  // Subkeys differ from each other and from the master.
  EXPECT_NE(std::memcmp(a.encryption_key(), a.master().data(), kKeySize), 0);
}

TEST(BackupCrypto, AeadDetectsEveryKindOfTampering) {
  RepoKeys k = RepoKeys::generate();
  std::vector<uint8_t> plain = arche::test::random_bytes(1000, 2), aad = {1, 2, 3};
  std::array<uint8_t, kNonceSize> nonce{};
  random_fill(nonce);
  std::vector<uint8_t> sealed(plain.size() + kTagSize);
  aead_seal(sealed, plain, aad, nonce, k.encryption_key());
  EXPECT_NE(std::memcmp(sealed.data(), plain.data(), plain.size()), 0);
  std::vector<uint8_t> out(plain.size());
  ASSERT_TRUE(aead_open(out, sealed, aad, nonce, k.encryption_key()));
  EXPECT_EQ(out, plain);
  auto flipped = sealed;
  flipped[500] ^= 0x10;
  EXPECT_FALSE(aead_open(out, flipped, aad, nonce, k.encryption_key()));
  std::vector<uint8_t> other_aad = {1, 2, 4};
  EXPECT_FALSE(aead_open(out, sealed, other_aad, nonce, k.encryption_key()));
  nonce[0] ^= 1;
  EXPECT_FALSE(aead_open(out, sealed, aad, nonce, k.encryption_key()));
  nonce[0] ^= 1;
  RepoKeys other = RepoKeys::generate();
  EXPECT_FALSE(aead_open(out, sealed, aad, nonce, other.encryption_key()));
}

TEST(BackupCrypto, SecretBytesShrinkZeroesTheTail) {
  SecretBytes s(16);
  std::memset(s.data(), 0xaa, 16);
  s.shrink(4);
  EXPECT_EQ(s.size(), 4u);
  for (int i = 4; i < 16; ++i) EXPECT_EQ(s.data()[i], 0) << i;
}

TEST(BackupKeySlot, WrapsAndUnwrapsTheMasterKeyOnlyWithThePassphrase) {
  RepoKeys keys = RepoKeys::generate();
  Id repo = Id::random();
  const std::string pass = "correct horse", wrong = "correct hors";
  KdfParams kdf{1, 8u << 20};
  KeySlot slot = make_key_slot(repo, keys.master(), std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()), kdf);
  std::vector<uint8_t> bytes = encode_key_slot(slot);
  // Nothing of the master key is in the file.
  EXPECT_EQ(std::search(bytes.begin(), bytes.end(), keys.master().begin(), keys.master().end()), bytes.end());
  KeySlot back = decode_key_slot(bytes, "slot");
  EXPECT_EQ(back.repo_id, repo);
  EXPECT_EQ(back.kdf.memlimit, kdf.memlimit);
  SecretBytes master = unwrap_key_slot(back, std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()));
  ASSERT_EQ(master.size(), kKeySize);
  EXPECT_EQ(std::memcmp(master.data(), keys.master().data(), kKeySize), 0);
  EXPECT_EQ(unwrap_key_slot(back, std::span(reinterpret_cast<const uint8_t*>(wrong.data()), wrong.size())).size(), 0u);
  // A changed KDF parameter (authenticated as AAD) makes the unwrap fail, not succeed with another key.
  KeySlot tampered = back;
  tampered.kdf.opslimit = 2;
  EXPECT_EQ(unwrap_key_slot(tampered, std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size())).size(), 0u);
}

TEST(BackupKeySlot, RefusesDamageUnknownVersionsAndAbsurdParameters) {
  RepoKeys keys = RepoKeys::generate();
  const std::string pass = "p";
  KeySlot slot = make_key_slot(Id::random(), keys.master(),
                               std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()), {1, 8u << 20});
  std::vector<uint8_t> bytes = encode_key_slot(slot);
  auto damaged = bytes;
  damaged[40] ^= 1;
  EXPECT_THROW(decode_key_slot(damaged, "slot"), Error);  // CRC
  // A well-formed slot of a newer major version is refused as such.
  OpenedRecord rec = open_record(bytes, "ARCHEKEY", 1, "slot");
  std::vector<uint8_t> newer = seal_record("ARCHEKEY", {2, 0}, rec.payload);
  try {
    decode_key_slot(newer, "slot");
    FAIL() << "version 2 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::unsupported) << e.what();
  }
  KeySlot huge = slot;
  huge.kdf.memlimit = 1ull << 40;
  EXPECT_THROW(decode_key_slot(encode_key_slot(huge), "slot"), Error);
  EXPECT_THROW(decode_key_slot(std::vector<uint8_t>(10, 0), "slot"), Error);
}

}  // namespace
}  // namespace arche::backup
