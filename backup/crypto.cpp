#include "backup/crypto.h"

#include <sodium.h>

#include <unistd.h>

#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/hex.h"

namespace arche::backup {

static_assert(kKeySize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kNonceSize == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kTagSize == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kKeySize == crypto_kdf_KEYBYTES);

namespace {

// Subkey numbers for crypto_kdf_derive_from_key; the context names the purpose.
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "archerep";
enum Subkey : uint64_t { kEncryption = 1, kChunkId = 2, kChunkerSeed = 3, kChunkerSeed2 = 4 };

}  // namespace

bool Id::is_zero() const {
  for (uint8_t b : bytes)
    if (b) return false;
  return true;
}

std::string Id::hex() const { return to_hex(bytes); }

Id Id::from_hex(std::string_view text, std::string_view what) {
  Id id;
  if (!arche::from_hex(text, id.bytes)) fail(ErrorCategory::format, "{} '{}' is not 64 hex digits", what, text);
  return id;
}

Id Id::from(std::span<const uint8_t> data) {
  if (data.size() != kIdSize) fail(ErrorCategory::internal, "id of {} bytes", data.size());
  Id id;
  std::memcpy(id.bytes.data(), data.data(), kIdSize);
  return id;
}

Id Id::random() {
  Id id;
  random_nonce(id.bytes);
  return id;
}

void crypto_init() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = sodium_init() >= 0; });
  if (!ok) fail(ErrorCategory::internal, "libsodium failed to initialise");
}

void random_fill(std::span<uint8_t> out) {
  crypto_init();
  randombytes_buf(out.data(), out.size());
}

void random_nonce(std::span<uint8_t> out) {
  struct Generator {
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint64_t counter = 0;
    pid_t pid = 0;
    ~Generator() { sodium_memzero(key, sizeof key); }
  };
  thread_local Generator g;
  if (g.pid != ::getpid()) {  // first use in this thread, or a forked child: new key
    random_fill(g.key);
    g.counter = 0;
    g.pid = ::getpid();
  }
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
  static_assert(sizeof nonce == sizeof g.counter);
  std::memcpy(nonce, &g.counter, sizeof nonce);
  ++g.counter;
  crypto_stream_chacha20(out.data(), out.size(), nonce, g.key);
}

void wipe(void* data, size_t size) { sodium_memzero(data, size); }

SecretBytes::SecretBytes(size_t size) : size_(size) {
  crypto_init();
  // sodium_malloc: guard pages around the block, mlock (never swapped out) and
  // MADV_DONTDUMP (never in a core dump). Size 0 still gets a valid pointer.
  data_ = static_cast<uint8_t*>(sodium_malloc(size ? size : 1));
  if (!data_) fail(ErrorCategory::no_space, "cannot allocate {} bytes of protected memory for key material", size);
  sodium_memzero(data_, size ? size : 1);
}

SecretBytes::~SecretBytes() {
  if (data_) sodium_free(data_);  // zeroes before unmapping
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void SecretBytes::shrink(size_t size) {
  if (size >= size_) return;
  sodium_memzero(data_ + size, size_ - size);
  size_ = size;
}

RepoKeys::RepoKeys(std::span<const uint8_t> master) : secret_(5 * kKeySize) {
  if (master.size() != kKeySize) fail(ErrorCategory::internal, "master key of {} bytes", master.size());
  std::memcpy(secret_.data(), master.data(), kKeySize);
  uint8_t* out = secret_.data() + kKeySize;
  for (uint64_t sub : {kEncryption, kChunkId, kChunkerSeed, kChunkerSeed2}) {
    if (crypto_kdf_derive_from_key(out, kKeySize, sub, kKdfContext, secret_.data()) != 0)
      fail(ErrorCategory::internal, "key derivation failed");
    out += kKeySize;
  }
}

RepoKeys RepoKeys::generate() {
  SecretBytes master(kKeySize);
  random_fill(master.span());
  return RepoKeys(master.span());
}

Id RepoKeys::chunk_id(std::span<const uint8_t> data) const {
  Id id;
  crypto_generichash(id.bytes.data(), kIdSize, data.data(), data.size(), secret_.data() + 2 * kKeySize, kKeySize);
  return id;
}

void aead_seal(std::span<uint8_t> out, std::span<const uint8_t> plain, std::span<const uint8_t> aad,
               std::span<const uint8_t> nonce, const uint8_t* key) {
  if (out.size() != plain.size() + kTagSize || nonce.size() != kNonceSize)
    fail(ErrorCategory::internal, "aead_seal: bad buffer sizes");
  unsigned long long mac_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out.data(), out.data() + plain.size(), &mac_len, plain.data(),
                                                      plain.size(), aad.data(), aad.size(), nullptr, nonce.data(),
                                                      key);
}

bool aead_open(std::span<uint8_t> out, std::span<const uint8_t> cipher, std::span<const uint8_t> aad,
               std::span<const uint8_t> nonce, const uint8_t* key) {
  if (cipher.size() < kTagSize || out.size() != cipher.size() - kTagSize || nonce.size() != kNonceSize) return false;
  const size_t n = cipher.size() - kTagSize;
  return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out.data(), nullptr, cipher.data(), n, cipher.data() + n,
                                                             aad.data(), aad.size(), nonce.data(), key) == 0;
}

Id content_hash(std::span<const uint8_t> data) {
  crypto_init();
  Id id;
  crypto_generichash(id.bytes.data(), kIdSize, data.data(), data.size(), nullptr, 0);
  return id;
}

}  // namespace arche::backup
