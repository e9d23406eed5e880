// The wire protocol between arche and its volume-reader child (sandbox.h), over a
// Unix socketpair. Documented in docs/volume.md, "The sandbox protocol".
//
// Every message:
//   magic "AVSB" (4 bytes) | version u16 le (1) | type u16 le | length u32 le |
//   payload (length bytes) | crc32c u32 le of everything before
// Payload fields are little endian; strings and byte strings are u32 length +
// bytes. A message with a wrong magic, version, length (over kMaxPayload) or CRC
// ends the conversation: the child exits, the parent stops the child.
//
// The parent asks (requests below 0x20) and the child answers with the same type
// | 0x80, or with kError. While it works on a request the child may ask the parent
// for disk bytes (kBlockRead); the parent answers kBlockData or kBlockError. The
// parent never trusts an answer: every count, length and index is checked.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "volume/filesystem.h"
#include "volume/tree.h"

namespace arche::volume::sandbox {

constexpr char kMagic[4] = {'A', 'V', 'S', 'B'};
constexpr uint16_t kVersion = 2;  // 2: volumes carry their placement (P2V)
constexpr size_t kHeaderSize = 12;
constexpr size_t kTrailerSize = 4;
constexpr uint32_t kMaxPayload = 64 << 20;
constexpr uint32_t kMaxRead = 16 << 20;  // bytes per kRead / kBlockRead

enum Type : uint16_t {
  // parent -> child
  kExplore = 0x01,     // u32 disks, per disk: string name, u64 size  -> volumes
  kFsInfo = 0x02,      // u32 volume -> type, label, uuid, u64 size, u64 used, u32 n + notes
  kStat = 0x03,        // u32 volume, string path -> FileStat
  kList = 0x04,        // u32 volume, string path -> u32 n, n x (string name, FileStat)
  kRead = 0x05,        // u32 volume, string path, u64 offset, u32 length -> bytes
  kReadlink = 0x06,    // u32 volume, string path -> string
  kStreams = 0x07,     // u32 volume, string path -> u32 n, n x string
  kUsedRanges = 0x08,  // u32 volume -> u32 n, n x (u64 offset, u64 length)
  kTest = 0x1f,        // bytes: runs the test hook (SandboxOptions::test_hook), if one was set
  // child -> parent
  kBlockRead = 0x20,  // u32 disk, u64 offset, u32 length
  kReplyFlag = 0x80,  // answer to request T is T | kReplyFlag
  kError = 0xff,      // u8 category, string message: the request failed
  // parent -> child, answers to kBlockRead
  kBlockData = 0x21,   // bytes
  kBlockError = 0x22,  // u8 category, string message
};

struct Message {
  uint16_t type = 0;
  std::vector<uint8_t> payload;
};

// Whole messages over a stream socket. Both throw Error(io) on a closed or failed
// socket and Error(corrupt) on a malformed message.
void send_message(int fd, uint16_t type, std::span<const uint8_t> payload);
Message receive_message(int fd);
// As receive_message, but a message of `type` with a payload of exactly
// into.size() bytes is read straight into `into` (true) — block data without a
// staging buffer and a copy; any other message goes to `other` (false). On a CRC
// failure `into` may hold the bad bytes: the caller must not use them (it throws).
bool receive_message_into(int fd, uint16_t type, std::span<uint8_t> into, Message& other);

// Field codecs shared by both sides.
void put_string(ByteWriter& w, std::string_view s);
std::string get_string(ByteReader& r);
void put_stat(ByteWriter& w, const FileStat& st);
FileStat get_stat(ByteReader& r);
void put_volume(ByteWriter& w, const VolumeInfo& v);
VolumeInfo get_volume(ByteReader& r);
void put_strings(ByteWriter& w, const std::vector<std::string>& items);
std::vector<std::string> get_strings(ByteReader& r);

}  // namespace arche::volume::sandbox
