#include "hv/virtio/pci_device.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace arche::hv {

namespace {

// BAR 0 layout.
constexpr uint64_t common_offset = 0x0000, common_size = 0x38;
constexpr uint64_t isr_offset = 0x1000;
constexpr uint64_t device_offset = 0x2000, device_size = 0x1000;
constexpr uint64_t notify_offset = 0x3000;
constexpr uint32_t notify_multiplier = 4;

// Capability types (virtio spec 4.1.4).
constexpr uint8_t cap_common = 1, cap_notify = 2, cap_isr = 3, cap_device = 4, cap_pci = 5;

std::vector<uint8_t> virtio_cap(uint8_t type, uint32_t offset, uint32_t length, size_t extra) {
  std::vector<uint8_t> c(16 + extra, 0);
  c[0] = 0x09;  // vendor-specific
  c[2] = static_cast<uint8_t>(c.size());
  c[3] = type;
  c[4] = 0;  // BAR 0
  std::memcpy(&c[8], &offset, 4);
  std::memcpy(&c[12], &length, 4);
  return c;
}

template <typename T>
void put(std::vector<uint8_t>& image, size_t at, T v) {
  std::memcpy(image.data() + at, &v, sizeof v);
}
template <typename T>
T get(const std::vector<uint8_t>& image, size_t at) {
  T v;
  std::memcpy(&v, image.data() + at, sizeof v);
  return v;
}

bool touches(uint64_t offset, size_t size, uint64_t field, size_t field_size) {
  return offset < field + field_size && field < offset + size;
}

}  // namespace

VirtioPciDevice::VirtioPciDevice(std::string name, uint16_t device_type, uint32_t class_code,
                                 const GuestMemory& memory, InterruptSink& irq, unsigned gsi, unsigned queue_count,
                                 uint16_t queue_size, uint32_t bar_address)
    : memory_(memory), name_(std::move(name)), irq_(irq), gsi_(gsi) {
  init_header(0x1af4, static_cast<uint16_t>(0x1040 + device_type), class_code, 1, 0x1af4, device_type,
              static_cast<uint8_t>(gsi), true);
  add_memory_bar(0, bar_size, bar_address);
  add_capability(virtio_cap(cap_common, common_offset, common_size, 0));
  add_capability(virtio_cap(cap_isr, isr_offset, 4, 0));
  add_capability(virtio_cap(cap_device, device_offset, device_size, 0));
  std::vector<uint8_t> notify = virtio_cap(cap_notify, notify_offset, queue_count * notify_multiplier, 4);
  std::memcpy(&notify[16], &notify_multiplier, 4);
  add_capability(notify);
  pci_cfg_cap_ = add_capability(virtio_cap(cap_pci, 0, 0, 4));
  for (unsigned i = 4; i < 20; ++i) wmask_[pci_cfg_cap_ + i] = 0xff;  // bar, offset, length, data
  s_.queues.resize(queue_count);
  for (auto& q : s_.queues) q.max_size = q.size = queue_size;
  common_image_.resize(common_size);
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw_errno(errno, "virtio: eventfd");
  kick_fd_.reset(fd);
}

VirtioPciDevice::~VirtioPciDevice() { stop_worker(); }

// ---- worker ---------------------------------------------------------------------

void VirtioPciDevice::start_worker() {
  if (worker_.joinable()) return;
  worker_ = std::thread([this] { worker_loop(); });
}

void VirtioPciDevice::stop_worker() {
  {
    std::lock_guard lock(worker_mutex_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(kick_fd_.get(), &one, 8);
  if (worker_.joinable()) worker_.join();
}

void VirtioPciDevice::pause_worker() {
  std::unique_lock lock(worker_mutex_);
  if (pause_depth_++ > 0) return;
  pause_requested_ = true;
  if (!worker_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(kick_fd_.get(), &one, 8);
  worker_cv_.wait(lock, [&] { return worker_paused_ || stop_; });
}

void VirtioPciDevice::resume_worker() {
  {
    std::lock_guard lock(worker_mutex_);
    if (pause_depth_ == 0 || --pause_depth_ > 0) return;
    pause_requested_ = false;
  }
  worker_cv_.notify_all();
  uint64_t one = 1;
  (void)!::write(kick_fd_.get(), &one, 8);  // re-check queues that were kicked while parked
}

void VirtioPciDevice::worker_loop() {
  for (;;) {
    pollfd fds[2] = {{kick_fd_.get(), POLLIN, 0}, {-1, 0, 0}};
    nfds_t n = 1;
    short extra = extra_events();
    if (extra && extra_fd() >= 0) fds[n++] = {extra_fd(), extra, 0};
    if (::poll(fds, n, -1) < 0 && errno != EINTR) {
      warn("{}: poll failed: {}", name_, std::strerror(errno));
      return;
    }
    {
      std::unique_lock lock(worker_mutex_);
      if (pause_requested_ && !stop_) {
        worker_paused_ = true;
        worker_cv_.notify_all();
        worker_cv_.wait(lock, [&] { return !pause_requested_ || stop_; });
        worker_paused_ = false;
        continue;  // poll again: state may have changed while parked
      }
      if (stop_) return;
    }
    uint64_t count;
    while (::read(kick_fd_.get(), &count, 8) == 8) {
    }
    uint32_t pending = pending_queues_.exchange(0);
    try {
      for (unsigned q = 0; q < 32; ++q)
        if (pending & (1u << q)) with_queue(q, [&](Virtqueue& vq) { process_queue(q, vq); });
      if (n > 1 && (fds[1].revents & (fds[1].events | POLLERR | POLLHUP))) on_extra_ready();
    } catch (const std::exception& e) {
      // A failure of the backend (not of the guest's queue): the device cannot go on.
      mark_broken(e.what());
    }
  }
}

void VirtioPciDevice::kick(unsigned queue) {
  pending_queues_.fetch_or(1u << queue);
  uint64_t one = 1;
  (void)!::write(kick_fd_.get(), &one, 8);
}

// ---- interrupts and errors ------------------------------------------------------

void VirtioPciDevice::raise_interrupt(uint8_t isr_bits) {
  std::lock_guard lock(irq_mutex_);
  s_.isr |= isr_bits;
  if (!irq_line_ && !intx_disabled()) {
    irq_line_ = true;
    irq_.set_irq_line(gsi_, true);
  }
}

void VirtioPciDevice::break_locked(const std::string& why) {
  if (s_.broken) return;
  s_.broken = true;
  s_.broken_reason = why;
  s_.status |= virtio::status_needs_reset;
  ++s_.config_generation;
  warn("{}: the guest driver broke the device ({}); it needs a reset", name_, why);
}

void VirtioPciDevice::mark_broken(const std::string& why) {
  {
    std::lock_guard lock(regs_mutex_);
    if (s_.broken) return;
    break_locked(why);
  }
  raise_interrupt(2);  // configuration change
}

bool VirtioPciDevice::broken() const {
  std::lock_guard lock(regs_mutex_);
  return s_.broken;
}

uint8_t VirtioPciDevice::device_status() const {
  std::lock_guard lock(regs_mutex_);
  return s_.status;
}

bool VirtioPciDevice::driver_ok() const {
  std::lock_guard lock(regs_mutex_);
  return !s_.broken && (s_.status & virtio::status_driver_ok);
}

uint64_t VirtioPciDevice::negotiated_features() const {
  std::lock_guard lock(regs_mutex_);
  return s_.driver_features;
}

VirtioState VirtioPciDevice::transport_state() const {
  VirtioState s;
  {
    std::lock_guard lock(regs_mutex_);
    s = s_;
  }
  s.pci = config_state();
  return s;
}

void VirtioPciDevice::reset() {
  pause_worker();
  {
    std::lock_guard lock(regs_mutex_);
    s_.status = 0;
    s_.driver_features = 0;
    s_.device_feature_select = s_.driver_feature_select = 0;
    s_.queue_select = 0;
    s_.config_msix_vector = 0xffff;
    s_.broken = false;
    s_.broken_reason.clear();
    for (auto& q : s_.queues) {
      uint16_t max = q.max_size;
      q = QueueState{};
      q.max_size = q.size = max;
    }
  }
  {
    std::lock_guard lock(irq_mutex_);
    s_.isr = 0;
    if (irq_line_) {
      irq_line_ = false;
      irq_.set_irq_line(gsi_, false);
    }
  }
  pending_queues_ = 0;
  on_reset();
  resume_worker();
}

// ---- registers ------------------------------------------------------------------

void VirtioPciDevice::bar_read(int, uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= common_offset && offset + data.size() <= common_offset + common_size) {
    std::lock_guard lock(regs_mutex_);
    common_read(offset - common_offset, data);
  } else if (offset >= isr_offset && offset < isr_offset + 4) {
    std::lock_guard lock(irq_mutex_);
    data[0] = s_.isr;  // reading clears it and lowers INTx
    s_.isr = 0;
    if (irq_line_) {
      irq_line_ = false;
      irq_.set_irq_line(gsi_, false);
    }
  } else if (offset >= device_offset && offset + data.size() <= device_offset + device_size) {
    read_config(offset - device_offset, data);
  }
}

void VirtioPciDevice::bar_write(int, uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= common_offset && offset + data.size() <= common_offset + common_size) {
    uint64_t at = offset - common_offset;
    if (touches(at, data.size(), 0x14, 1) && data[0x14 - at] == 0) {
      reset();  // writing 0 to device_status
      return;
    }
    std::lock_guard lock(regs_mutex_);
    common_write(at, data);
  } else if (offset >= notify_offset && offset < notify_offset + s_.queues.size() * notify_multiplier) {
    kick(static_cast<unsigned>((offset - notify_offset) / notify_multiplier));
  } else if (offset >= device_offset && offset + data.size() <= device_offset + device_size) {
    write_config(offset - device_offset, data);
  }
}

void VirtioPciDevice::common_read(uint64_t offset, std::span<uint8_t> data) {
  auto& img = common_image_;
  std::fill(img.begin(), img.end(), 0);
  uint64_t features = device_features() | virtio::f_version_1;
  put<uint32_t>(img, 0x00, s_.device_feature_select);
  put<uint32_t>(img, 0x04, s_.device_feature_select < 2 ? static_cast<uint32_t>(features >> (32 * s_.device_feature_select)) : 0);
  put<uint32_t>(img, 0x08, s_.driver_feature_select);
  put<uint32_t>(img, 0x0c, s_.driver_feature_select < 2 ? static_cast<uint32_t>(s_.driver_features >> (32 * s_.driver_feature_select)) : 0);
  put<uint16_t>(img, 0x10, s_.config_msix_vector);
  put<uint16_t>(img, 0x12, static_cast<uint16_t>(s_.queues.size()));
  img[0x14] = s_.status;
  img[0x15] = s_.config_generation;
  put<uint16_t>(img, 0x16, s_.queue_select);
  if (s_.queue_select < s_.queues.size()) {
    const QueueState& q = s_.queues[s_.queue_select];
    put<uint16_t>(img, 0x18, q.size);
    put<uint16_t>(img, 0x1a, q.msix_vector);
    put<uint16_t>(img, 0x1c, q.enabled ? 1 : 0);
    put<uint16_t>(img, 0x1e, s_.queue_select);
    put<uint64_t>(img, 0x20, q.desc);
    put<uint64_t>(img, 0x28, q.driver);
    put<uint64_t>(img, 0x30, q.device);
  }
  std::memcpy(data.data(), img.data() + offset, data.size());
}

void VirtioPciDevice::common_write(uint64_t offset, std::span<const uint8_t> data) {
  // Read-modify-write of the register image, then apply every field the write
  // touched: any access width and split works.
  common_read(0, common_image_);
  std::memcpy(common_image_.data() + offset, data.data(), data.size());
  const auto& img = common_image_;
  size_t n = data.size();
  if (touches(offset, n, 0x00, 4)) s_.device_feature_select = get<uint32_t>(img, 0x00);
  if (touches(offset, n, 0x08, 4)) s_.driver_feature_select = get<uint32_t>(img, 0x08);
  if (touches(offset, n, 0x0c, 4) && !(s_.status & virtio::status_features_ok) && s_.driver_feature_select < 2) {
    unsigned shift = 32 * s_.driver_feature_select;
    s_.driver_features = (s_.driver_features & ~(0xffffffffull << shift)) | (uint64_t(get<uint32_t>(img, 0x0c)) << shift);
  }
  if (touches(offset, n, 0x10, 2)) s_.config_msix_vector = get<uint16_t>(img, 0x10);
  if (touches(offset, n, 0x16, 2)) s_.queue_select = get<uint16_t>(img, 0x16);
  if (s_.queue_select < s_.queues.size()) {
    QueueState& q = s_.queues[s_.queue_select];
    if (!q.enabled) {
      if (touches(offset, n, 0x18, 2)) q.size = get<uint16_t>(img, 0x18);
      if (touches(offset, n, 0x20, 8)) q.desc = get<uint64_t>(img, 0x20);
      if (touches(offset, n, 0x28, 8)) q.driver = get<uint64_t>(img, 0x28);
      if (touches(offset, n, 0x30, 8)) q.device = get<uint64_t>(img, 0x30);
    }
    if (touches(offset, n, 0x1a, 2)) q.msix_vector = get<uint16_t>(img, 0x1a);
    if (touches(offset, n, 0x1c, 2) && get<uint16_t>(img, 0x1c) == 1) q.enabled = true;
  }
  if (touches(offset, n, 0x14, 1)) {
    uint8_t old = s_.status, value = img[0x14];
    if ((value & virtio::status_features_ok) && !(old & virtio::status_features_ok)) {
      uint64_t offered = device_features() | virtio::f_version_1;
      if ((s_.driver_features & ~offered) || !(s_.driver_features & virtio::f_version_1))
        value &= static_cast<uint8_t>(~virtio::status_features_ok);  // refuse: the driver reads it back
    }
    s_.status = static_cast<uint8_t>(value | (old & virtio::status_needs_reset));
    if ((value & virtio::status_driver_ok) && !(old & virtio::status_driver_ok)) {
      for (size_t i = 0; i < s_.queues.size(); ++i) {
        if (!s_.queues[i].enabled) continue;
        QueueState copy = s_.queues[i];
        try {
          Virtqueue check(memory_, copy);
        } catch (const QueueError& e) {
          break_locked(fmt::format("queue {}: {}", i, e.what()));
        }
      }
      if (!s_.broken) {
        pending_queues_.fetch_or((1u << s_.queues.size()) - 1);
        uint64_t one = 1;
        (void)!::write(kick_fd_.get(), &one, 8);
      }
    }
  }
}

// ---- the PCI configuration access capability -------------------------------------

void VirtioPciDevice::config_written(unsigned offset, size_t size) {
  unsigned data_at = pci_cfg_cap_ + 16;
  if (!pci_cfg_cap_ || !(offset < data_at + 4 && data_at < offset + size)) return;
  uint32_t bar_offset, length;
  std::memcpy(&bar_offset, &config_[pci_cfg_cap_ + 8], 4);
  std::memcpy(&length, &config_[pci_cfg_cap_ + 12], 4);
  if (config_[pci_cfg_cap_ + 4] != 0 || (length != 1 && length != 2 && length != 4) || bar_offset >= bar_size) return;
  uint8_t bytes[4];
  std::memcpy(bytes, &config_[data_at], 4);
  bar_write(0, bar_offset, {bytes, length});
}

void VirtioPciDevice::config_before_read(unsigned offset) {
  unsigned data_at = pci_cfg_cap_ + 16;
  if (!pci_cfg_cap_ || offset != (data_at & ~3u)) return;
  uint32_t bar_offset, length;
  std::memcpy(&bar_offset, &config_[pci_cfg_cap_ + 8], 4);
  std::memcpy(&length, &config_[pci_cfg_cap_ + 12], 4);
  if (config_[pci_cfg_cap_ + 4] != 0 || (length != 1 && length != 2 && length != 4) || bar_offset >= bar_size) return;
  uint8_t bytes[4] = {};
  bar_read(0, bar_offset, {bytes, length});
  std::memcpy(&config_[data_at], bytes, 4);
}

}  // namespace arche::hv
