// Key slots (keys/<slot id>): the repository's master secret wrapped by a key derived
// from a passphrase with argon2id. A repository has one slot per passphrase; any one
// of them opens it. The file is self-contained (KDF parameters, salt, repository id),
// so a tape that carries it can be opened with the passphrase alone.
//
//   record "ARCHEKEY" v1 (core/bytes.h envelope: magic, version, CRC32C) holding
//     slot id (16) | repository id (32) | created (u64 unix s) | kdf (u8, 1 = argon2id13)
//     | opslimit (u64) | memlimit (u64) | salt (16) | nonce (24)
//     | XChaCha20-Poly1305(master secret, 32 bytes) + tag (16)
//   AAD = magic, version and every field before the nonce's ciphertext, so no
//   parameter can be changed without the unwrap failing.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backup/crypto.h"

namespace arche::backup {

struct KdfParams {
  uint64_t opslimit = 3;
  uint64_t memlimit = 32ull << 20;  // 32 MiB: strong, and keeps arche under 64 MB peak RSS
};

struct KeySlot {
  uint16_t major = 1, minor = 0;  // format version (part of the AAD)
  std::array<uint8_t, 16> slot_id{};
  Id repo_id;
  uint64_t created = 0;
  KdfParams kdf;
  std::array<uint8_t, 16> salt{};
  std::array<uint8_t, kNonceSize> nonce{};
  std::array<uint8_t, kKeySize + kTagSize> wrapped{};

  std::string name() const;  // hex of slot_id: the file name under keys/
};

// Wraps `master` under `passphrase` in a new slot (fresh salt and nonce).
KeySlot make_key_slot(const Id& repo_id, std::span<const uint8_t> master, std::span<const uint8_t> passphrase,
                      const KdfParams& kdf);
// Unwraps: the master secret, or an empty SecretBytes when the passphrase is wrong.
SecretBytes unwrap_key_slot(const KeySlot& slot, std::span<const uint8_t> passphrase);

std::vector<uint8_t> encode_key_slot(const KeySlot& slot);
// Throws format/corrupt/unsupported errors naming `what`. KDF parameters beyond
// sane limits are refused (a crafted slot must not make arche allocate 100 GiB).
KeySlot decode_key_slot(std::span<const uint8_t> data, const std::string& what);

}  // namespace arche::backup
