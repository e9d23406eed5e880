#include "backup/s3_sigv4.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "backup/crypto.h"
#include "core/error.h"
#include "core/hex.h"

namespace arche::backup::s3 {
namespace {

using Digest = std::array<uint8_t, 32>;

Digest hmac(std::span<const uint8_t> key, std::string_view message) {
  Digest out{};
  unsigned length = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const uint8_t*>(message.data()),
            message.size(), out.data(), &length) ||
      length != out.size()) {
    fail(ErrorCategory::internal, "HMAC-SHA256 failed");
  }
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Leading and trailing spaces removed, inner runs of spaces made one (SigV4 "Trimall").
std::string trim_all(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Lower-case names in order, duplicate names' values joined with ','.
std::map<std::string, std::string> canonical_headers(const HeaderList& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : headers) {
    auto [it, fresh] = out.try_emplace(lower(name), trim_all(value));
    if (!fresh) it->second += "," + trim_all(value);
  }
  return out;
}

std::string scope(const SigningKeyId& key, std::string_view date_time) {
  return std::string(date_time.substr(0, 8)) + "/" + key.region + "/" + key.service + "/aws4_request";
}

}  // namespace

std::string uri_encode(std::string_view text, bool encode_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);  // SigV4 wants upper-case percent-encoding
    }
  }
  return out;
}

std::string amz_date(std::time_t when) {
  std::tm utc{};
  gmtime_r(&when, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  return buffer;
}

std::string sha256_hex(std::span<const uint8_t> data) {
  Digest out{};
  unsigned length = 0;
  if (!EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr)) {
    fail(ErrorCategory::internal, "SHA-256 failed");
  }
  return to_hex(out);
}

std::string canonical_query(const HeaderList& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : query) encoded.emplace_back(uri_encode(name, true), uri_encode(value, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

std::string signed_header_names(const HeaderList& headers) {
  std::string out;
  for (const auto& entry : canonical_headers(headers)) {
    if (!out.empty()) out += ';';
    out += entry.first;
  }
  return out;
}

std::string canonical_request(const SigningInput& input) {
  std::string out = input.method + "\n" + input.encoded_path + "\n" + canonical_query(input.query) + "\n";
  for (const auto& [name, value] : canonical_headers(input.headers)) out += name + ":" + value + "\n";
  out += "\n" + signed_header_names(input.headers) + "\n" + input.payload_hash;
  return out;
}

std::string string_to_sign(const SigningInput& input, const SigningKeyId& key, std::string_view date_time) {
  return "AWS4-HMAC-SHA256\n" + std::string(date_time) + "\n" + scope(key, date_time) + "\n" +
         sha256_hex(canonical_request(input));
}

std::string authorization(const SigningInput& input, const SigningKeyId& key, std::string_view date_time) {
  if (date_time.size() != 16) fail(ErrorCategory::internal, "SigV4: bad x-amz-date '{}'", date_time);
  // The secret and the derived keys stay in locked memory and are wiped after use.
  SecretBytes seed(4 + key.secret_access_key.size());
  std::copy_n("AWS4", 4, seed.data());
  std::copy(key.secret_access_key.begin(), key.secret_access_key.end(), seed.data() + 4);
  Digest k = hmac(seed.span(), date_time.substr(0, 8));
  for (std::string_view part : {std::string_view(key.region), std::string_view(key.service), std::string_view("aws4_request")}) {
    k = hmac(k, part);
  }
  const Digest signature = hmac(k, string_to_sign(input, key, date_time));
  wipe(k.data(), k.size());
  return "AWS4-HMAC-SHA256 Credential=" + key.access_key_id + "/" + scope(key, date_time) +
         ", SignedHeaders=" + signed_header_names(input.headers) + ", Signature=" + to_hex(signature);
}

}  // namespace arche::backup::s3
