// The split virtqueue (virtio 1.x, section 2.7) as seen by a device. Every index,
// address and length the guest supplies is checked: a chain that loops, points
// outside RAM, is longer than the queue or absurdly large raises QueueError, and
// the device then marks itself DEVICE_NEEDS_RESET instead of touching host memory.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv/memory.h"

namespace arche::hv {

class QueueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Driver-written configuration plus the device's ring positions: all of a queue's
// state, as a snapshot saves it.
struct QueueState {
  uint16_t max_size = 256;
  uint16_t size = 256;
  bool enabled = false;
  uint64_t desc = 0, driver = 0, device = 0;
  uint16_t msix_vector = 0xffff;
  uint16_t next_avail = 0;  // next avail ring slot the device consumes
  uint16_t next_used = 0;   // next used ring slot the device fills
};

struct DescChain {
  uint16_t head = 0;
  std::vector<std::span<uint8_t>> readable;  // device reads (driver -> device)
  std::vector<std::span<uint8_t>> writable;  // device writes (device -> driver)
  uint64_t readable_bytes = 0, writable_bytes = 0;
};

// Largest total length of one chain's buffers (generous for 1 MiB x 126 segments).
inline constexpr uint64_t max_chain_bytes = 256ull << 20;

class Virtqueue {
 public:
  // Checks the ring geometry (size a power of two, rings aligned and inside RAM).
  Virtqueue(const GuestMemory& memory, QueueState& state);

  // The next available chain, or nullopt when the driver has offered nothing new.
  std::optional<DescChain> pop();
  void push(uint16_t head, uint32_t written);
  // False when the driver asked not to be interrupted (VIRTQ_AVAIL_F_NO_INTERRUPT).
  bool wants_interrupt() const;
  bool has_available() const;

 private:
  uint16_t avail_idx() const;
  const GuestMemory& memory_;
  QueueState& s_;
  uint8_t* desc_ = nullptr;
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
};

// Copies between a chain's buffers and host memory, treating the segments as one
// stream (headers may share a descriptor with data, any split is legal).
size_t copy_from_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip, std::span<uint8_t> out);
size_t copy_to_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip, std::span<const uint8_t> in);
// The sub-spans covering [skip, skip+length) of the stream.
std::vector<std::span<uint8_t>> slice_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip,
                                               uint64_t length);

}  // namespace arche::hv
