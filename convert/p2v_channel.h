// The authenticated, encrypted channel of `p2v send` / `receive` (docs/p2v.md,
// "Protocol"): a handshake of ephemeral X25519 keys (libsodium crypto_kx) whose
// session keys are mixed with a key derived from the receiver's one-time token,
// each side proving it knows the token before anything else is sent, then one
// crypto_secretstream (XChaCha20-Poly1305) per direction carrying the messages of
// p2v_wire.h, each with its length authenticated.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "convert/p2v_socket.h"

namespace arche::convert {

constexpr char kWireMagic[4] = {'A', 'P', '2', 'V'};
constexpr uint16_t kWireVersion = 1;

// 128 random bits, shown as 32 hex digits in groups of 8 ("3f9c01aa-...").
struct Token {
  std::array<uint8_t, 16> bytes{};
  static Token random();
  // Hex digits with or without the dashes; a usage error otherwise.
  static Token parse(const std::string& text);
  std::string text() const;
};

class Channel {
 public:
  // The sender's side: fails with `crypto` when the receiver does not prove the
  // token (nothing but the handshake was sent then).
  static Channel client(Connection connection, const Token& token);
  // The receiver's side: fails with `crypto` when the sender does not prove it.
  static Channel server(Connection connection, const Token& token);

  void send(std::span<const uint8_t> message, bool final = false);
  // The next message; `final` tells whether the peer ended its stream with it.
  std::vector<uint8_t> receive(bool* final = nullptr);
  Connection& connection() { return connection_; }

 private:
  Connection connection_;
  crypto_secretstream_xchacha20poly1305_state push_{}, pull_{};
  bool ended_ = false;  // the peer's final message was received
};

}  // namespace arche::convert
