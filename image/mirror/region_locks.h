// Locks over regions of the mirror's data area, striped (region % kStripes), so a
// disk of any size needs a fixed number of locks. Guest writes hold the regions
// they touch shared; work that must see a region still — healing a block, a
// rebuild or scrub step, a resync — holds one region exclusively at a time. An
// exclusive holder never waits for another stripe, and shared holders take their
// stripes in ascending order, so there is no cycle to deadlock on.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <shared_mutex>

namespace arche::image::mirror {

class RegionLocks {
 public:
  static constexpr size_t kStripes = 256;

  std::shared_mutex& of(uint64_t region) { return stripes_[region % kStripes]; }

  // Holds the stripes of regions [first, last] shared for its lifetime.
  class Shared {
   public:
    Shared(RegionLocks& locks, uint64_t first, uint64_t last) {
      if (last - first + 1 >= kStripes) {
        for (size_t s = 0; s < kStripes; ++s) held_[count_++] = s;
      } else {
        for (uint64_t r = first; r <= last; ++r) held_[count_++] = r % kStripes;
        std::sort(held_.begin(), held_.begin() + count_);  // wraps around past stripe 255
      }
      for (size_t i = 0; i < count_; ++i) locks.stripes_[held_[i]].lock_shared();
      locks_ = &locks;
    }
    ~Shared() {
      for (size_t i = count_; i-- > 0;) locks_->stripes_[held_[i]].unlock_shared();
    }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;

   private:
    RegionLocks* locks_ = nullptr;
    std::array<size_t, kStripes> held_;
    size_t count_ = 0;
  };

 private:
  std::array<std::shared_mutex, kStripes> stripes_;
};

// Serialises read-modify-write of one checksum block between writers that each
// cover only part of it (they hold the region shared, so they need this too).
class BlockLocks {
 public:
  static constexpr size_t kStripes = 64;
  std::mutex& of(uint64_t block) { return stripes_[block % kStripes]; }

 private:
  std::array<std::mutex, kStripes> stripes_;
};

}  // namespace arche::image::mirror
