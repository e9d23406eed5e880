#include "convert/p2v_channel.h"

#include <chrono>

#include "convert/p2v_wire.h"
#include "core/bytes.h"
#include "core/endian.h"
#include "core/hex.h"

namespace arche::convert {

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(15);
constexpr size_t kKey = 32;
using Key = std::array<uint8_t, kKey>;

enum HandshakeType : uint8_t { kHello = 1, kHelloReply = 2, kConfirm = 3 };
constexpr size_t kHeader = 8;  // magic, version, type, reserved
constexpr size_t kStreamHeader = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kFrameOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;

void ensure_sodium() {
  if (sodium_init() < 0) fail(ErrorCategory::internal, "libsodium failed to initialise");
}

std::vector<uint8_t> handshake_header(HandshakeType type) {
  ByteWriter w;
  w.string(std::string_view(kWireMagic, 4));
  w.le16(kWireVersion);
  w.u8(type);
  w.u8(0);
  return w.take();
}

// Reads a handshake message of `body` bytes after its header and checks the header.
std::vector<uint8_t> read_handshake(Connection& c, HandshakeType type, size_t body) {
  std::vector<uint8_t> m(kHeader + body);
  c.read_exact(std::span(m).first(kHeader));
  if (std::memcmp(m.data(), kWireMagic, 4) != 0)
    fail(ErrorCategory::format, "{} does not speak the arche p2v protocol", c.peer());
  if (load_le16(m.data() + 4) != kWireVersion)
    fail(ErrorCategory::unsupported, "{} speaks p2v protocol version {}, this arche {}", c.peer(),
         load_le16(m.data() + 4), kWireVersion);
  if (m[6] != type || m[7] != 0) fail(ErrorCategory::format, "{}: handshake message {} where {} belongs", c.peer(), m[6], static_cast<int>(type));
  c.read_exact(std::span(m).subspan(kHeader));
  return m;
}

// The token's key: BLAKE2b of the token, personalised so no other use of the token
// gives the same key.
Key token_key(const Token& token) {
  Key k;
  static const uint8_t personal[crypto_generichash_blake2b_PERSONALBYTES] = {'a', 'r', 'c', 'h', 'e', '-', 'p', '2',
                                                                             'v', '-', 't', 'o', 'k', 'e', 'n', 0};
  crypto_generichash_blake2b_salt_personal(k.data(), k.size(), token.bytes.data(), token.bytes.size(), nullptr, 0,
                                           nullptr, personal);
  return k;
}

// Everything either side derives: keyed by the token's key, over a label, both
// X25519 session keys (client→server, server→client) and both public keys.
struct Keys {
  Key server_proof, client_proof, c2s, s2c;
};

Keys derive(const Token& token, const uint8_t* c2s_kx, const uint8_t* s2c_kx, const uint8_t* client_pk,
            const uint8_t* server_pk) {
  Key tk = token_key(token);
  auto one = [&](std::string_view label) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, tk.data(), tk.size(), kKey);
    crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
    crypto_generichash_update(&st, c2s_kx, crypto_kx_SESSIONKEYBYTES);
    crypto_generichash_update(&st, s2c_kx, crypto_kx_SESSIONKEYBYTES);
    crypto_generichash_update(&st, client_pk, crypto_kx_PUBLICKEYBYTES);
    crypto_generichash_update(&st, server_pk, crypto_kx_PUBLICKEYBYTES);
    Key k;
    crypto_generichash_final(&st, k.data(), k.size());
    return k;
  };
  Keys keys{one("arche p2v v1 server proof"), one("arche p2v v1 client proof"), one("arche p2v v1 stream c2s"),
            one("arche p2v v1 stream s2c")};
  sodium_memzero(tk.data(), tk.size());
  return keys;
}

struct Ephemeral {
  uint8_t pk[crypto_kx_PUBLICKEYBYTES], sk[crypto_kx_SECRETKEYBYTES];
  Ephemeral() { crypto_kx_keypair(pk, sk); }
  ~Ephemeral() { sodium_memzero(sk, sizeof sk); }
};

struct SessionKx {
  uint8_t c2s[crypto_kx_SESSIONKEYBYTES], s2c[crypto_kx_SESSIONKEYBYTES];
  ~SessionKx() {
    sodium_memzero(c2s, sizeof c2s);
    sodium_memzero(s2c, sizeof s2c);
  }
};

void wipe(Keys& k) { sodium_memzero(&k, sizeof k); }

}  // namespace

Token Token::random() {
  ensure_sodium();
  Token t;
  randombytes_buf(t.bytes.data(), t.bytes.size());
  return t;
}

Token Token::parse(const std::string& text) {
  std::string digits;
  for (char c : text)
    if (c != '-') digits += c;
  Token t;
  if (!from_hex(digits, t.bytes)) fail(ErrorCategory::usage, "the token is 32 hex digits (as `p2v receive` printed it)");
  return t;
}

std::string Token::text() const {
  const std::string h = to_hex(bytes);
  return fmt::format("{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 8), h.substr(16, 8), h.substr(24, 8));
}

// Sender                                         Receiver
//   hello: header | client_pk             ->
//                                         <-   reply: header | server_pk | server_proof | s2c stream header
//   (checks server_proof)
//   confirm: header | client_proof | c2s stream header ->
//                                                (checks client_proof)
Channel Channel::client(Connection connection, const Token& token) {
  ensure_sodium();
  Channel ch;
  ch.connection_ = std::move(connection);
  Connection& c = ch.connection_;
  c.set_idle_timeout(kHandshakeTimeout);
  Ephemeral e;
  std::vector<uint8_t> hello = handshake_header(kHello);
  hello.insert(hello.end(), e.pk, e.pk + sizeof e.pk);
  c.write_all(hello);

  std::vector<uint8_t> reply;
  try {
    reply = read_handshake(c, kHelloReply, crypto_kx_PUBLICKEYBYTES + kKey + kStreamHeader);
  } catch (const ConnectionLost& lost) {
    throw ConnectionLost(fmt::format("{} (during the handshake)", lost.what()));
  }
  const uint8_t* server_pk = reply.data() + kHeader;
  SessionKx kx;
  if (crypto_kx_client_session_keys(kx.s2c, kx.c2s, e.pk, e.sk, server_pk) != 0)
    fail(ErrorCategory::crypto, "{} sent an unusable public key", c.peer());
  Keys keys = derive(token, kx.c2s, kx.s2c, e.pk, server_pk);
  if (sodium_memcmp(keys.server_proof.data(), server_pk + crypto_kx_PUBLICKEYBYTES, kKey) != 0) {
    wipe(keys);
    fail(ErrorCategory::crypto, "the receiver at {} does not know this token (wrong token, or another receiver); nothing was sent",
         c.peer());
  }
  if (crypto_secretstream_xchacha20poly1305_init_pull(&ch.pull_, server_pk + crypto_kx_PUBLICKEYBYTES + kKey,
                                                      keys.s2c.data()) != 0)
    fail(ErrorCategory::crypto, "{}: bad stream header", c.peer());
  std::vector<uint8_t> confirm = handshake_header(kConfirm);
  confirm.insert(confirm.end(), keys.client_proof.begin(), keys.client_proof.end());
  uint8_t header[kStreamHeader];
  crypto_secretstream_xchacha20poly1305_init_push(&ch.push_, header, keys.c2s.data());
  confirm.insert(confirm.end(), header, header + kStreamHeader);
  wipe(keys);
  c.write_all(confirm);
  c.set_idle_timeout(std::chrono::seconds(120));
  return ch;
}

Channel Channel::server(Connection connection, const Token& token) {
  ensure_sodium();
  Channel ch;
  ch.connection_ = std::move(connection);
  Connection& c = ch.connection_;
  c.set_idle_timeout(kHandshakeTimeout);
  std::vector<uint8_t> hello = read_handshake(c, kHello, crypto_kx_PUBLICKEYBYTES);
  const uint8_t* client_pk = hello.data() + kHeader;
  Ephemeral e;
  SessionKx kx;
  if (crypto_kx_server_session_keys(kx.c2s, kx.s2c, e.pk, e.sk, client_pk) != 0)
    fail(ErrorCategory::crypto, "{} sent an unusable public key", c.peer());
  Keys keys = derive(token, kx.c2s, kx.s2c, client_pk, e.pk);
  std::vector<uint8_t> reply = handshake_header(kHelloReply);
  reply.insert(reply.end(), e.pk, e.pk + sizeof e.pk);
  reply.insert(reply.end(), keys.server_proof.begin(), keys.server_proof.end());
  uint8_t header[kStreamHeader];
  crypto_secretstream_xchacha20poly1305_init_push(&ch.push_, header, keys.s2c.data());
  reply.insert(reply.end(), header, header + kStreamHeader);
  c.write_all(reply);

  std::vector<uint8_t> confirm;
  try {
    confirm = read_handshake(c, kConfirm, kKey + kStreamHeader);
  } catch (const ConnectionLost&) {
    wipe(keys);
    fail(ErrorCategory::crypto, "{} left during the handshake (a sender with a wrong token stops there)", c.peer());
  }
  const bool proven = sodium_memcmp(keys.client_proof.data(), confirm.data() + kHeader, kKey) == 0;
  const bool pulled = proven && crypto_secretstream_xchacha20poly1305_init_pull(&ch.pull_, confirm.data() + kHeader + kKey,
                                                                                keys.c2s.data()) == 0;
  wipe(keys);
  if (!pulled) fail(ErrorCategory::crypto, "{} does not know the token; refused before any data", c.peer());
  c.set_idle_timeout(std::chrono::seconds(120));
  return ch;
}

// A frame: ciphertext length (u32 le) | secretstream ciphertext; the length is the
// message's additional data, so a changed length fails authentication too.
void Channel::send(std::span<const uint8_t> message, bool final) {
  std::vector<uint8_t> frame(4 + message.size() + kFrameOverhead);
  store_le32(frame.data(), static_cast<uint32_t>(message.size() + kFrameOverhead));
  crypto_secretstream_xchacha20poly1305_push(&push_, frame.data() + 4, nullptr, message.data(), message.size(),
                                             frame.data(), 4,
                                             final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
  connection_.write_all(frame);
}

std::vector<uint8_t> Channel::receive(bool* final) {
  if (ended_) fail(ErrorCategory::corrupt, "{}: a message after the end of its stream", connection_.peer());
  uint8_t length[4];
  connection_.read_exact(length);
  const uint32_t n = load_le32(length);
  if (n < kFrameOverhead || n > wire::kMaxMessage + kFrameOverhead)
    fail(ErrorCategory::corrupt, "{}: a frame of {} bytes", connection_.peer(), n);
  std::vector<uint8_t> frame(n);
  connection_.read_exact(frame);
  std::vector<uint8_t> message(n - kFrameOverhead);
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(&pull_, message.data(), nullptr, &tag, frame.data(), n, length, 4) != 0)
    fail(ErrorCategory::crypto, "{}: a message fails authentication (changed on the way)", connection_.peer());
  ended_ = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  if (final) *final = ended_;
  return message;
}

}  // namespace arche::convert
