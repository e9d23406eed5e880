#include "hv/virtio/queue.h"

#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "core/units.h"

namespace arche::hv {

namespace {
constexpr uint16_t desc_f_next = 1, desc_f_write = 2, desc_f_indirect = 4;
constexpr uint16_t avail_f_no_interrupt = 1;

uint16_t load16(const uint8_t* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p))).load(std::memory_order_acquire);
}
void store16_release(uint8_t* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_release);
}
}  // namespace

Virtqueue::Virtqueue(const GuestMemory& memory, QueueState& state) : memory_(memory), s_(state) {
  uint64_t n = s_.size;
  if (!is_power_of_two(n) || n > s_.max_size)
    throw QueueError(fmt::format("queue size {} is not a power of two up to {}", n, s_.max_size));
  if (s_.desc % 16 || s_.driver % 2 || s_.device % 4)
    throw QueueError(fmt::format("misaligned rings (desc {:#x}, avail {:#x}, used {:#x})", s_.desc, s_.driver, s_.device));
  desc_ = memory.ptr(s_.desc, 16 * n);
  avail_ = memory.ptr(s_.driver, 6 + 2 * n);
  used_ = memory.ptr(s_.device, 6 + 8 * n);
  if (!desc_ || !avail_ || !used_)
    throw QueueError(fmt::format("ring outside guest RAM (desc {:#x}, avail {:#x}, used {:#x})", s_.desc, s_.driver,
                                 s_.device));
}

uint16_t Virtqueue::avail_idx() const { return load16(avail_ + 2); }

bool Virtqueue::has_available() const { return avail_idx() != s_.next_avail; }

std::optional<DescChain> Virtqueue::pop() {
  uint16_t avail = avail_idx();
  uint16_t pending = static_cast<uint16_t>(avail - s_.next_avail);
  if (pending == 0) return std::nullopt;
  if (pending > s_.size)
    throw QueueError(fmt::format("available index jumped from {} to {} (queue size {})", s_.next_avail, avail, s_.size));
  uint16_t slot = s_.next_avail % s_.size;
  uint16_t head;
  std::memcpy(&head, avail_ + 4 + 2 * slot, 2);
  if (head >= s_.size) throw QueueError(fmt::format("descriptor head {} beyond queue size {}", head, s_.size));

  DescChain chain;
  chain.head = head;
  uint16_t index = head;
  for (unsigned count = 0;; ++count) {
    if (count >= s_.size) throw QueueError(fmt::format("descriptor chain from {} loops", head));
    const uint8_t* d = desc_ + 16 * index;
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    std::memcpy(&addr, d, 8);
    std::memcpy(&len, d + 8, 4);
    std::memcpy(&flags, d + 12, 2);
    std::memcpy(&next, d + 14, 2);
    if (flags & desc_f_indirect) throw QueueError("indirect descriptor, but the feature was not offered");
    uint8_t* p = memory_.ptr(addr, len);
    if (!p && len) throw QueueError(fmt::format("descriptor {} at {:#x} (+{:#x}) is outside guest RAM", index, addr, len));
    if (flags & desc_f_write) {
      chain.writable.emplace_back(p, len);
      chain.writable_bytes += len;
    } else {
      if (!chain.writable.empty()) throw QueueError("device-readable descriptor after a device-writable one");
      chain.readable.emplace_back(p, len);
      chain.readable_bytes += len;
    }
    if (chain.readable_bytes + chain.writable_bytes > max_chain_bytes)
      throw QueueError(fmt::format("descriptor chain from {} is larger than {}", head, format_size(max_chain_bytes)));
    if (!(flags & desc_f_next)) break;
    if (next >= s_.size) throw QueueError(fmt::format("descriptor {} links to {} beyond queue size", index, next));
    index = next;
  }
  ++s_.next_avail;
  return chain;
}

void Virtqueue::push(uint16_t head, uint32_t written) {
  uint16_t slot = s_.next_used % s_.size;
  uint32_t elem[2] = {head, written};
  std::memcpy(used_ + 4 + 8 * slot, elem, 8);
  ++s_.next_used;
  store16_release(used_ + 2, s_.next_used);
}

bool Virtqueue::wants_interrupt() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return !(load16(avail_) & avail_f_no_interrupt);
}

size_t copy_from_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip, std::span<uint8_t> out) {
  size_t done = 0;
  for (const auto& s : segs) {
    if (done == out.size()) break;
    if (skip >= s.size()) {
      skip -= s.size();
      continue;
    }
    size_t n = std::min<size_t>(s.size() - skip, out.size() - done);
    std::memcpy(out.data() + done, s.data() + skip, n);
    done += n;
    skip = 0;
  }
  return done;
}

size_t copy_to_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip, std::span<const uint8_t> in) {
  size_t done = 0;
  for (const auto& s : segs) {
    if (done == in.size()) break;
    if (skip >= s.size()) {
      skip -= s.size();
      continue;
    }
    size_t n = std::min<size_t>(s.size() - skip, in.size() - done);
    std::memcpy(s.data() + skip, in.data() + done, n);
    done += n;
    skip = 0;
  }
  return done;
}

std::vector<std::span<uint8_t>> slice_segments(const std::vector<std::span<uint8_t>>& segs, uint64_t skip,
                                               uint64_t length) {
  std::vector<std::span<uint8_t>> out;
  for (const auto& s : segs) {
    if (!length) break;
    if (skip >= s.size()) {
      skip -= s.size();
      continue;
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(s.size() - skip, length));
    out.push_back(s.subspan(skip, n));
    length -= n;
    skip = 0;
  }
  return out;
}

}  // namespace arche::hv
