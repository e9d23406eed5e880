#include "tests/backup/memory_store.h"

#include <algorithm>
#include <ctime>
#include <thread>

namespace arche::backup::test {

class MemoryStore::Writer final : public ObjectWriter {
 public:
  Writer(MemoryStore& store, std::string name, WriteMode mode) : store_(store), name_(std::move(name)), mode_(mode) {
    const size_t open = ++store_.open_writers_;
    size_t peak = store_.peak_open_writers_;
    while (open > peak && !store_.peak_open_writers_.compare_exchange_weak(peak, open)) {
    }
  }
  ~Writer() override {
    if (!done_) --store_.open_writers_;
  }
  void append(std::span<const uint8_t> data) override { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  uint64_t bytes_written() const override { return bytes_.size(); }
  void commit() override {
    store_.put(name_, std::move(bytes_), mode_);
    done_ = true;
    --store_.open_writers_;
  }

 private:
  MemoryStore& store_;
  std::string name_;
  WriteMode mode_;
  std::vector<uint8_t> bytes_;
  bool done_ = false;
};

namespace {

class MemoryReader final : public ObjectReader {
 public:
  MemoryReader(std::shared_ptr<const std::vector<uint8_t>> bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  uint64_t size() const override { return bytes_->size(); }
  void read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > bytes_->size() || out.size() > bytes_->size() - offset)
      fail(ErrorCategory::format, "memory store: {} is truncated (read of {} bytes at {}, it has {})", name_,
           out.size(), offset, bytes_->size());
    std::copy_n(bytes_->begin() + static_cast<ptrdiff_t>(offset), out.size(), out.begin());
  }

 private:
  std::shared_ptr<const std::vector<uint8_t>> bytes_;
  std::string name_;
};

}  // namespace

MemoryStore::MemoryStore() : MemoryStore(Options{}) {}
MemoryStore::MemoryStore(Options options) : options_(options) {}

void MemoryStore::delay() const {
  if (options_.latency.count()) std::this_thread::sleep_for(options_.latency);
}

const MemoryStore::Object& MemoryStore::find_locked(std::string_view name) const {
  auto it = objects_.find(name);
  if (it == objects_.end()) fail(ErrorCategory::not_found, "{}: {} does not exist", location(), name);
  return it->second;
}

void MemoryStore::before_mutation(std::string_view name) {
  delay();
  std::unique_lock lock(mutex_);
  if (gate_closed_ && name.substr(0, gate_prefix_.size()) == gate_prefix_) {
    ++waiting_at_gate_;
    gate_changed_.notify_all();
    gate_changed_.wait(lock, [this] { return !gate_closed_; });
    --waiting_at_gate_;
  }
  if (fail_count_ > 0 && name.substr(0, fail_prefix_.size()) == fail_prefix_) {
    if (fail_skip_ > 0) {
      --fail_skip_;
      return;
    }
    --fail_count_;
    fail(fail_category_, "{}: injected failure writing {}", location(), name);
  }
}

void MemoryStore::put(const std::string& name, std::vector<uint8_t> bytes, WriteMode mode) {
  before_mutation(name);
  std::lock_guard lock(mutex_);
  auto it = objects_.find(name);
  if (it != objects_.end() && mode == WriteMode::create)
    fail(ErrorCategory::exists, "{}: {} exists already", location(), name);
  Object o{std::make_shared<const std::vector<uint8_t>>(std::move(bytes)), static_cast<int64_t>(std::time(nullptr)),
           std::chrono::steady_clock::now() + options_.listing_lag};
  // A replaced object stays listed (its name was visible before).
  if (it != objects_.end()) o.listed_from = std::min(o.listed_from, it->second.listed_from);
  objects_[name] = std::move(o);
  ++writes_;
}

std::vector<ObjectInfo> MemoryStore::list(std::string_view prefix) {
  delay();
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<ObjectInfo> out;
  for (auto it = objects_.lower_bound(prefix); it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    if (it->second.listed_from <= now) out.push_back({it->first, it->second.bytes->size(), it->second.mtime});
  return out;
}

std::optional<ObjectInfo> MemoryStore::stat(std::string_view name) {
  delay();
  std::lock_guard lock(mutex_);
  auto it = objects_.find(name);
  if (it == objects_.end()) return std::nullopt;
  return ObjectInfo{it->first, it->second.bytes->size(), it->second.mtime};
}

std::vector<uint8_t> MemoryStore::read(std::string_view name) {
  delay();
  std::lock_guard lock(mutex_);
  return *find_locked(name).bytes;
}

std::vector<uint8_t> MemoryStore::read_range(std::string_view name, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> out(length);
  open(name)->read(offset, out);
  return out;
}

std::unique_ptr<ObjectReader> MemoryStore::open(std::string_view name) {
  delay();
  std::lock_guard lock(mutex_);
  return std::make_unique<MemoryReader>(find_locked(name).bytes, std::string(name));
}

void MemoryStore::write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  check_object_name(name, location());
  put(std::string(name), std::vector<uint8_t>(data.begin(), data.end()), mode);
}

std::unique_ptr<ObjectWriter> MemoryStore::create(std::string_view name, WriteMode mode) {
  check_object_name(name, location());
  delay();
  return std::make_unique<Writer>(*this, std::string(name), mode);
}

void MemoryStore::remove(std::string_view name) {
  before_mutation(name);
  std::lock_guard lock(mutex_);
  objects_.erase(std::string(name));
}

std::vector<ObjectInfo> MemoryStore::list_temporaries() {
  // Uploads in progress exist only in their writers: nothing to name.
  return {};
}

void MemoryStore::fail_next(const std::string& prefix, int count, ErrorCategory category, int skip) {
  std::lock_guard lock(mutex_);
  fail_prefix_ = prefix;
  fail_count_ = count;
  fail_category_ = category;
  fail_skip_ = skip;
}

void MemoryStore::close_gate(const std::string& prefix) {
  std::lock_guard lock(mutex_);
  gate_prefix_ = prefix;
  gate_closed_ = true;
}

bool MemoryStore::wait_at_gate(std::chrono::milliseconds timeout, int writers) {
  std::unique_lock lock(mutex_);
  return gate_changed_.wait_for(lock, timeout, [this, writers] { return waiting_at_gate_ >= writers; });
}

void MemoryStore::open_gate() {
  std::lock_guard lock(mutex_);
  gate_closed_ = false;
  gate_changed_.notify_all();
}

void MemoryStore::poke(const std::string& name, std::vector<uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  objects_[name] = Object{std::make_shared<const std::vector<uint8_t>>(std::move(bytes)),
                          static_cast<int64_t>(std::time(nullptr)), std::chrono::steady_clock::now()};
}

std::vector<uint8_t> MemoryStore::peek(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return *find_locked(name).bytes;
}

bool MemoryStore::contains(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return objects_.count(name) != 0;
}

size_t MemoryStore::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

uint64_t MemoryStore::bytes_stored() const {
  std::lock_guard lock(mutex_);
  uint64_t n = 0;
  for (const auto& [name, o] : objects_) n += o.bytes->size();
  return n;
}

}  // namespace arche::backup::test
