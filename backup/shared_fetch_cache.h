// A small cache of immutable values (decrypted chunks, chunk lists) that hands out
// shared pointers instead of copies, and fetches each missing value once, outside
// its lock: other threads asking for the same key meanwhile wait for that fetch,
// threads asking for other keys are not held up by it. A fetch that fails is not
// cached (the next get() tries again); whoever waited for it gets its error.
// Least recently used values are dropped when more than `capacity` are held; values
// still being fetched are never dropped. Thread-safe.
#pragma once

#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace arche::backup {

template <class T>
class SharedFetchCache {
 public:
  using Value = std::shared_ptr<const T>;

  explicit SharedFetchCache(size_t capacity) : capacity_(capacity ? capacity : 1) {}

  // The value of `key`, from the cache or from fetch() (run on this thread).
  template <class Fetch>
  Value get(uint64_t key, Fetch&& fetch) {
    std::unique_lock lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      it->second.used = ++clock_;
      std::shared_future<Value> pending = it->second.value;
      lock.unlock();
      return pending.get();
    }
    return fetch_locked(key, std::forward<Fetch>(fetch), lock);
  }

  // Fetches `key` unless it is cached or being fetched; errors are dropped (the
  // reader that needs the value later fetches it again and sees the error).
  template <class Fetch>
  void prefetch(uint64_t key, Fetch&& fetch) {
    std::unique_lock lock(mutex_);
    if (entries_.count(key)) return;
    try {
      fetch_locked(key, std::forward<Fetch>(fetch), lock);
    } catch (...) {
    }
  }

  bool contains(uint64_t key) const {
    std::lock_guard lock(mutex_);
    return entries_.count(key) != 0;
  }

 private:
  struct Entry {
    std::shared_future<Value> value;
    uint64_t used = 0;
    uint64_t serial = 0;  // which fetch made it (a failed fetch removes only its own entry)
  };

  template <class Fetch>
  Value fetch_locked(uint64_t key, Fetch&& fetch, std::unique_lock<std::mutex>& lock) {
    std::promise<Value> promise;
    const uint64_t serial = ++serial_;
    entries_.emplace(key, Entry{promise.get_future().share(), ++clock_, serial});
    evict_locked();
    lock.unlock();
    try {
      Value v = fetch();
      promise.set_value(v);
      return v;
    } catch (...) {
      promise.set_exception(std::current_exception());
      lock.lock();
      if (auto it = entries_.find(key); it != entries_.end() && it->second.serial == serial) entries_.erase(it);
      lock.unlock();
      throw;
    }
  }

  void evict_locked() {
    while (entries_.size() > capacity_) {
      auto oldest = entries_.end();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->second.value.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
        if (oldest == entries_.end() || it->second.used < oldest->second.used) oldest = it;
      }
      if (oldest == entries_.end()) return;  // everything is in flight
      entries_.erase(oldest);
    }
  }

  const size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Entry> entries_;
  uint64_t clock_ = 0, serial_ = 0;
};

}  // namespace arche::backup
