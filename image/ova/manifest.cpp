#include "image/ova/manifest.h"

#include <sodium.h>

#include <cctype>
#include <vector>

#include "core/error.h"
#include "core/hex.h"
#include "core/units.h"

namespace arche::image::ova {

namespace {

// Feeds bytes to SHA-256 or SHA-512 (libsodium) and returns the hex digest.
class Hasher {
 public:
  explicit Hasher(const std::string& algorithm) : sha512_(algorithm == "SHA512") {
    if (sodium_init() < 0) fail(ErrorCategory::internal, "libsodium failed to initialize");
    if (sha512_) crypto_hash_sha512_init(&s512_);
    else crypto_hash_sha256_init(&s256_);
  }
  void update(const uint8_t* p, size_t n) {
    if (sha512_) crypto_hash_sha512_update(&s512_, p, n);
    else crypto_hash_sha256_update(&s256_, p, n);
  }
  std::string hex() {
    unsigned char out[crypto_hash_sha512_BYTES];
    if (sha512_) {
      crypto_hash_sha512_final(&s512_, out);
      return to_hex(std::span(out, crypto_hash_sha512_BYTES));
    }
    crypto_hash_sha256_final(&s256_, out);
    return to_hex(std::span(out, crypto_hash_sha256_BYTES));
  }

 private:
  bool sha512_;
  crypto_hash_sha256_state s256_{};
  crypto_hash_sha512_state s512_{};
};

}  // namespace

std::map<std::string, Digest> parse_manifest(std::string_view text, const std::string& what) {
  std::map<std::string, Digest> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    // ALGO(name)= hex
    size_t open = line.find('('), close = line.rfind(")=");
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
      fail(ErrorCategory::format, "{}: invalid manifest line '{}'", what, std::string(line.substr(0, 200)));
    Digest d;
    for (char c : line.substr(0, open)) d.algorithm += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string_view hex = line.substr(close + 2);
    while (!hex.empty() && hex.front() == ' ') hex.remove_prefix(1);
    for (char c : hex) {
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        fail(ErrorCategory::format, "{}: invalid digest in manifest line '{}'", what, std::string(line.substr(0, 200)));
      d.hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out[std::string(line.substr(open + 1, close - open - 1))] = std::move(d);
  }
  return out;
}

bool can_verify(const Digest& d) {
  return (d.algorithm == "SHA256" && d.hex.size() == 64) || (d.algorithm == "SHA512" && d.hex.size() == 128);
}

std::string file_digest(const std::string& algorithm, const File& file, uint64_t offset, uint64_t length) {
  Hasher h(algorithm);
  std::vector<uint8_t> buf(4 * MiB);
  while (length > 0) {
    const uint64_t n = std::min<uint64_t>(length, buf.size());
    file.read_exact(offset, std::span(buf.data(), n));
    h.update(buf.data(), n);
    offset += n;
    length -= n;
  }
  return h.hex();
}

std::string text_digest(const std::string& algorithm, std::string_view text) {
  Hasher h(algorithm);
  h.update(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  return h.hex();
}

}  // namespace arche::image::ova
