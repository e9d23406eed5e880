// The cryptography of a backup repository, all of it from libsodium:
//   - secrets live in SecretBytes (sodium_malloc: guard pages, mlock'ed, excluded
//     from core dumps, zeroed when freed);
//   - one random 32-byte master secret per repository; every key is derived from it
//     with crypto_kdf (BLAKE2b), so a key slot only has to wrap 32 bytes;
//   - chunk ids are keyed BLAKE2b-256 of the plaintext (ids reveal nothing to whoever
//     lacks the key, not even whether two repositories hold the same data);
//   - everything stored is sealed with XChaCha20-Poly1305 under random 24-byte
//     nonces (safe to pick at random: 192 bits).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace arche::backup {

constexpr size_t kIdSize = 32;
constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 24;
constexpr size_t kTagSize = 16;

// A chunk, pack, index or snapshot id: 32 bytes, shown as 64 hex digits.
struct Id {
  std::array<uint8_t, kIdSize> bytes{};

  bool operator==(const Id&) const = default;
  auto operator<=>(const Id&) const = default;
  bool is_zero() const;
  std::string hex() const;
  std::string short_hex() const { return hex().substr(0, 8); }
  // Throws a format error naming `what` unless `text` is 64 hex digits.
  static Id from_hex(std::string_view text, std::string_view what = "id");
  static Id from(std::span<const uint8_t> data);  // exactly 32 bytes
  static Id random();
};

struct IdHash {
  size_t operator()(const Id& id) const {
    size_t h;
    static_assert(sizeof h <= kIdSize);
    __builtin_memcpy(&h, id.bytes.data(), sizeof h);
    return h;  // ids are uniformly random already
  }
};

// Initialises libsodium once; throws when the library cannot start.
void crypto_init();
void random_fill(std::span<uint8_t> out);
// Fresh nonces (and other unique, unpredictable values) without a system call each:
// a per-thread ChaCha20 key stream under a key from the kernel's generator, reseeded
// after fork. (getrandom took milliseconds per call on the virtual machines arche was
// measured on: one per chunk was seconds per backup.)
void random_nonce(std::span<uint8_t> out);

// Memory for secrets. Move-only; contents zeroed and unmapped on destruction.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> span() { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Shrinks the visible size (the tail is zeroed), e.g. after stripping a newline.
  void shrink(size_t size);

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroes memory in a way the compiler cannot optimise away.
void wipe(void* data, size_t size);

// The keys of one repository, derived from its master secret.
class RepoKeys {
 public:
  // Derives every subkey from `master` (32 bytes).
  explicit RepoKeys(std::span<const uint8_t> master);
  static RepoKeys generate();

  std::span<const uint8_t> master() const { return secret_.span().first(kKeySize); }
  const uint8_t* encryption_key() const { return secret_.data() + kKeySize; }
  // Keyed BLAKE2b-256 of the plaintext.
  Id chunk_id(std::span<const uint8_t> data) const;
  // 64 secret bytes from which the content-defined chunker builds its gear table,
  // so cut points (and thus chunk sizes) do not fingerprint known files.
  std::span<const uint8_t> chunker_seed() const { return secret_.span().subspan(3 * kKeySize, 2 * kKeySize); }

 private:
  SecretBytes secret_;  // master | encryption | id | chunker seed (64)
};

// XChaCha20-Poly1305. `out` receives ciphertext followed by the 16-byte tag and must
// be plain.size() + kTagSize long; it may alias `plain` (in-place encryption).
void aead_seal(std::span<uint8_t> out, std::span<const uint8_t> plain, std::span<const uint8_t> aad,
               std::span<const uint8_t> nonce, const uint8_t* key);
// Returns false when the tag does not verify (damaged, altered, or another key).
// `out` must be cipher.size() - kTagSize long; it may alias `cipher`.
[[nodiscard]] bool aead_open(std::span<uint8_t> out, std::span<const uint8_t> cipher, std::span<const uint8_t> aad,
                             std::span<const uint8_t> nonce, const uint8_t* key);

// Unkeyed BLAKE2b-256, for naming files by their (encrypted) content.
Id content_hash(std::span<const uint8_t> data);

}  // namespace arche::backup
