#include "backup/key_slot.h"

#include <sodium.h>

#include <cstring>
#include <ctime>

#include "core/bytes.h"
#include "core/error.h"

namespace arche::backup {

namespace {

constexpr std::string_view kMagic = "ARCHEKEY";
constexpr RecordVersion kVersion{1, 0};
constexpr uint8_t kKdfArgon2id13 = 1;
constexpr uint64_t kMaxMemlimit = 4ull << 30;
constexpr uint64_t kMaxOpslimit = 64;

// Everything the tag must cover: magic, version and the fields before the ciphertext.
std::vector<uint8_t> associated_data(const KeySlot& s) {
  ByteWriter w;
  w.string(kMagic);
  w.le16(s.major);
  w.le16(s.minor);
  w.bytes(s.slot_id);
  w.bytes(s.repo_id.bytes);
  w.le64(s.created);
  w.u8(kKdfArgon2id13);
  w.le64(s.kdf.opslimit);
  w.le64(s.kdf.memlimit);
  w.bytes(s.salt);
  w.bytes(s.nonce);
  return w.take();
}

SecretBytes derive_wrapping_key(const KeySlot& s, std::span<const uint8_t> passphrase) {
  SecretBytes key(kKeySize);
  if (crypto_pwhash(key.data(), key.size(), reinterpret_cast<const char*>(passphrase.data()), passphrase.size(),
                    s.salt.data(), s.kdf.opslimit, static_cast<size_t>(s.kdf.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    fail(ErrorCategory::no_space, "argon2id needs {} MiB of memory and could not get it", s.kdf.memlimit >> 20);
  return key;
}

void check_kdf(const KdfParams& kdf, const std::string& what) {
  if (kdf.opslimit < crypto_pwhash_OPSLIMIT_MIN || kdf.opslimit > kMaxOpslimit)
    fail(ErrorCategory::corrupt, "{}: argon2id opslimit {} outside {}..{}", what, kdf.opslimit,
         crypto_pwhash_OPSLIMIT_MIN, kMaxOpslimit);
  if (kdf.memlimit < crypto_pwhash_MEMLIMIT_MIN || kdf.memlimit > kMaxMemlimit)
    fail(ErrorCategory::corrupt, "{}: argon2id memory limit {} bytes outside {}..{}", what, kdf.memlimit,
         crypto_pwhash_MEMLIMIT_MIN, kMaxMemlimit);
}

}  // namespace

std::string KeySlot::name() const {
  Id padded;
  std::memcpy(padded.bytes.data(), slot_id.data(), slot_id.size());
  return padded.hex().substr(0, 2 * slot_id.size());
}

KeySlot make_key_slot(const Id& repo_id, std::span<const uint8_t> master, std::span<const uint8_t> passphrase,
                      const KdfParams& kdf) {
  check_kdf(kdf, "new key slot");
  if (master.size() != kKeySize) fail(ErrorCategory::internal, "master key of {} bytes", master.size());
  KeySlot s;
  random_fill(s.slot_id);
  s.repo_id = repo_id;
  s.created = static_cast<uint64_t>(std::time(nullptr));
  s.kdf = kdf;
  random_fill(s.salt);
  random_fill(s.nonce);
  SecretBytes key = derive_wrapping_key(s, passphrase);
  aead_seal(s.wrapped, master, associated_data(s), s.nonce, key.data());
  return s;
}

SecretBytes unwrap_key_slot(const KeySlot& s, std::span<const uint8_t> passphrase) {
  SecretBytes key = derive_wrapping_key(s, passphrase);
  SecretBytes master(kKeySize);
  if (!aead_open(master.span(), s.wrapped, associated_data(s), s.nonce, key.data())) return {};
  return master;
}

std::vector<uint8_t> encode_key_slot(const KeySlot& s) {
  std::vector<uint8_t> ad = associated_data(s);
  ByteWriter w;
  w.bytes(std::span(ad).subspan(kMagic.size() + 4));  // the fields, without magic/version
  w.bytes(s.wrapped);
  return seal_record(kMagic, {s.major, s.minor}, w.buffer());
}

KeySlot decode_key_slot(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord rec = open_record(data, kMagic, kVersion.major, what);
  ByteReader r(rec.payload, what);
  KeySlot s;
  s.major = rec.version.major;
  s.minor = rec.version.minor;
  std::memcpy(s.slot_id.data(), r.bytes(s.slot_id.size()).data(), s.slot_id.size());
  s.repo_id = Id::from(r.bytes(kIdSize));
  s.created = r.le64();
  uint8_t kdf = r.u8();
  if (kdf != kKdfArgon2id13) fail(ErrorCategory::unsupported, "{}: unknown key derivation function {}", what, kdf);
  s.kdf.opslimit = r.le64();
  s.kdf.memlimit = r.le64();
  check_kdf(s.kdf, what);
  std::memcpy(s.salt.data(), r.bytes(s.salt.size()).data(), s.salt.size());
  std::memcpy(s.nonce.data(), r.bytes(s.nonce.size()).data(), s.nonce.size());
  std::memcpy(s.wrapped.data(), r.bytes(s.wrapped.size()).data(), s.wrapped.size());
  if (r.remaining() != 0) fail(ErrorCategory::corrupt, "{}: {} unexpected bytes after the key", what, r.remaining());
  return s;
}

}  // namespace arche::backup
