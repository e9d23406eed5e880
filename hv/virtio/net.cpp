#include "hv/virtio/net.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/log.h"

namespace arche::hv {

namespace {
constexpr uint64_t f_mac = 1ull << 5, f_status = 1ull << 16;
constexpr size_t net_header = 12;  // virtio_net_hdr with num_buffers (VERSION_1)
constexpr size_t max_frame = 65536;
constexpr unsigned rx_queue = 0, tx_queue = 1;
}  // namespace

std::array<uint8_t, 6> parse_mac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  unsigned v[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    fail(ErrorCategory::usage, "vm: '{}' is not a MAC address (like 52:54:00:12:34:56)", text);
  for (int i = 0; i < 6; ++i) mac[static_cast<size_t>(i)] = static_cast<uint8_t>(v[i]);
  if (mac[0] & 1) fail(ErrorCategory::usage, "vm: MAC {} is a multicast address", text);
  return mac;
}

std::array<uint8_t, 6> default_mac(const std::string& vm_name, unsigned index) {
  std::string key = vm_name + "/" + std::to_string(index);
  uint32_t h = crc32c(key.data(), key.size());
  return {0x52, 0x54, 0x00, static_cast<uint8_t>(h >> 16), static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h)};
}

VirtioNet::VirtioNet(std::string name, const std::string& tap, std::array<uint8_t, 6> mac, const GuestMemory& memory,
                     InterruptSink& irq, unsigned gsi, uint32_t bar_address)
    : VirtioPciDevice(std::move(name), virtio::type_net, 0x020000, memory, irq, gsi, 2, 256, bar_address),
      tap_name_(tap),
      mac_(mac) {
  if (tap.empty() || tap.size() >= IFNAMSIZ) fail(ErrorCategory::usage, "vm: bad TAP device name '{}'", tap);
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "vm: open /dev/net/tun");
  tap_.reset(fd);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, tap.data(), tap.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) throw_errno(errno, "vm: attach to TAP device " + tap);
}

uint64_t VirtioNet::device_features() const { return f_mac | f_status; }

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t cfg[12] = {};
  std::memcpy(cfg, mac_.data(), 6);
  cfg[6] = 1;  // status: link up
  cfg[8] = 1;  // max_virtqueue_pairs
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

VirtioNetState VirtioNet::state() const { return {transport_state(), mac_, tap_name_}; }

void VirtioNet::on_reset() {
  pending_.clear();
  rx_waiting_ = false;
}

short VirtioNet::extra_events() const { return (rx_waiting_ || !driver_ok()) ? 0 : POLLIN; }

void VirtioNet::process_queue(unsigned index, Virtqueue& queue) {
  if (index == rx_queue) {
    rx_waiting_ = false;  // new buffers: deliver what waits, poll the TAP again
    receive_into(queue);
    return;
  }
  if (index != tx_queue) return;
  bool any = false;
  std::vector<uint8_t> frame;
  while (auto chain = queue.pop()) {
    if (chain->readable_bytes >= net_header && chain->readable_bytes - net_header <= max_frame) {
      frame.resize(chain->readable_bytes - net_header);
      copy_from_segments(chain->readable, net_header, frame);
      if (::write(tap_.get(), frame.data(), frame.size()) < 0 && errno != EAGAIN)
        debug("{}: TAP write failed: {}", name(), std::strerror(errno));
      else
        ++tx_frames_;
    }
    queue.push(chain->head, 0);
    any = true;
  }
  if (any && queue.wants_interrupt()) raise_interrupt(1);
}

void VirtioNet::on_extra_ready() { with_queue(rx_queue, [&](Virtqueue& rx) { receive_into(rx); }); }

void VirtioNet::receive_into(Virtqueue& rx) {
  bool any = false;
  for (;;) {
    if (pending_.empty()) {
      pending_.resize(net_header + max_frame);
      ssize_t n = ::read(tap_.get(), pending_.data() + net_header, max_frame);
      if (n <= 0) {
        pending_.clear();
        break;
      }
      pending_.resize(net_header + static_cast<size_t>(n));
      std::memset(pending_.data(), 0, net_header);
      pending_[10] = 1;  // num_buffers
    }
    auto chain = rx.pop();
    if (!chain) {
      rx_waiting_ = true;  // keep the frame until the guest gives buffers
      break;
    }
    uint32_t written = 0;
    if (chain->writable_bytes >= pending_.size()) {
      written = static_cast<uint32_t>(copy_to_segments(chain->writable, 0, pending_));
      ++rx_frames_;
    }
    rx.push(chain->head, written);  // a too-small buffer comes back empty: the frame is dropped
    pending_.clear();
    any = true;
  }
  if (any && rx.wants_interrupt()) raise_interrupt(1);
}

// ---- virtio-rng -----------------------------------------------------------------

VirtioRng::VirtioRng(std::string name, const GuestMemory& memory, InterruptSink& irq, unsigned gsi,
                     uint32_t bar_address)
    : VirtioPciDevice(std::move(name), virtio::type_rng, 0x00ff00, memory, irq, gsi, 1, 64, bar_address) {}

void VirtioRng::process_queue(unsigned, Virtqueue& queue) {
  bool any = false;
  while (auto chain = queue.pop()) {
    uint32_t written = 0;
    for (auto& seg : chain->writable) {
      if (written >= 65536) break;  // bounded work per request, whatever the guest asks
      size_t n = std::min<size_t>(seg.size(), 65536 - written);
      ssize_t got = ::getrandom(seg.data(), n, 0);
      if (got <= 0) break;
      written += static_cast<uint32_t>(got);
      if (static_cast<size_t>(got) < seg.size()) break;  // keep the filled bytes contiguous
    }
    queue.push(chain->head, written);
    any = true;
  }
  if (any && queue.wants_interrupt()) raise_interrupt(1);
}

}  // namespace arche::hv
