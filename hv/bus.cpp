#include "hv/bus.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace arche::hv {

void Bus::add(uint64_t base, uint64_t length, BusDevice* device, std::string name) {
  for (const auto& r : ranges_)
    if (base < r.base + r.length && r.base < base + length)
      fail(ErrorCategory::internal, "{} bus: {} at {:#x} overlaps {}", name_, name, base, r.name);
  ranges_.push_back({base, length, device, std::move(name)});
  std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.base < b.base; });
}

const Bus::Range* Bus::find(uint64_t address) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](uint64_t a, const Range& r) { return a < r.base; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return address - it->base < it->length ? &*it : nullptr;
}

bool Bus::read(uint64_t address, std::span<uint8_t> data) const {
  const Range* r = find(address);
  if (!r) {
    std::memset(data.data(), 0xff, data.size());
    return false;
  }
  r->device->bus_read(address - r->base, data);
  return true;
}

bool Bus::write(uint64_t address, std::span<const uint8_t> data) const {
  const Range* r = find(address);
  if (!r) return false;
  r->device->bus_write(address - r->base, data);
  return true;
}

}  // namespace arche::hv
