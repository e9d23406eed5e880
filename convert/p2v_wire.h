// The messages of `p2v send` / `p2v receive` inside the encrypted channel
// (p2v_channel.h), as plain structs with an encoder and a decoder. The decoder
// takes untrusted bytes (an authenticated peer may still be buggy) and throws a
// corrupt error for anything malformed; it is the fuzz target of the protocol.
// Layout: docs/p2v.md, "Protocol".
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace arche::convert::wire {

enum class Type : uint8_t {
  disk = 1,     // sender: the next disk; the receiver answers `resume` or `refuse`
  resume = 2,   // receiver: where the disk's data starts (its durable progress)
  data = 3,     // sender: bytes at a disk offset (non-zero blocks only)
  mark = 4,     // sender: everything of the disk's map below `position` was sent
  end = 5,      // sender: the disk is complete; the receiver answers `stored`
  stored = 6,   // receiver: the disk's image is under its final name
  refuse = 7,   // receiver: it cannot take the disk (exists, no space): the session ends
  bye = 8,      // sender: all disks sent (final message of its stream)
  bye_ack = 9,  // receiver: records removed, it exits (final message of its stream)
};

constexpr size_t kDigestSize = 32;
constexpr size_t kMaxName = 64;
constexpr size_t kMaxData = 4 << 20;  // bytes of one data message
constexpr size_t kMaxMessage = kMaxData + 16;

struct Message {
  Type type = Type::bye;
  // disk
  uint32_t index = 0;
  std::string name;  // [A-Za-z0-9._-], 1..64, not starting with '.'
  uint64_t size = 0, selected = 0;
  std::array<uint8_t, kDigestSize> digest{};  // of the disk's map: a resume needs the same one
  // resume, mark: position; data: offset; stored: file bytes
  uint64_t position = 0;
  bool complete = false;          // resume: the image is already stored
  std::vector<uint8_t> data;      // data
  std::string reason;             // refuse
  uint8_t category = 0;           // refuse: arche::ErrorCategory of the receiver's error
};

std::vector<uint8_t> encode(const Message& m);
// The data message without copying the payload into a Message first.
std::vector<uint8_t> encode_data(uint64_t offset, std::span<const uint8_t> data);
Message decode(std::span<const uint8_t> bytes);

bool valid_disk_name(const std::string& name);

}  // namespace arche::convert::wire
