// A backup::Store in memory, for tests: the whole Store contract, and faults a real
// store shows now and then, injected on purpose:
// - eventual consistency: a write is listed only `listing_lag` after it returned
//   (reads and stats see it at once, as S3 did for new objects);
// - latency on every call;
// - failures: the next N writes (or removes) of names with a prefix fail with an
//   error of a chosen category (io: a dropped connection; no_space: a full store);
// - a gate: writes of names with a prefix wait until the test opens it, so a test
//   can stop a backup at an exact point (before its index file) and run a prune
//   beside it;
// - capabilities as chosen (no atomic rename, no exclusive create, like S3).
// Every backup suite that is independent of where objects live runs against it too
// (store_suite_test.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backup/store.h"
#include "core/error.h"

namespace arche::backup::test {

class MemoryStore final : public Store {
 public:
  struct Options {
    StoreCapabilities capabilities{};  // default: nothing guaranteed beyond the contract
    std::chrono::milliseconds listing_lag{0};
    std::chrono::milliseconds latency{0};
  };
  MemoryStore();
  explicit MemoryStore(Options options);

  std::string location() const override { return "memory://" + std::to_string(reinterpret_cast<uintptr_t>(this)); }
  StoreCapabilities capabilities() const override { return options_.capabilities; }
  std::vector<ObjectInfo> list(std::string_view prefix) override;
  std::optional<ObjectInfo> stat(std::string_view name) override;
  std::vector<uint8_t> read(std::string_view name) override;
  std::vector<uint8_t> read_range(std::string_view name, uint64_t offset, uint64_t length) override;
  std::unique_ptr<ObjectReader> open(std::string_view name) override;
  void write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) override;
  std::unique_ptr<ObjectWriter> create(std::string_view name, WriteMode mode) override;
  void remove(std::string_view name) override;
  std::vector<ObjectInfo> list_temporaries() override;

  // --- faults ------------------------------------------------------------------
  // After `skip` more, the next `count` writes/commits/removes of names starting with
  // `prefix` fail.
  void fail_next(const std::string& prefix, int count, ErrorCategory category = ErrorCategory::io, int skip = 0);
  // Writes of names starting with `prefix` block until open_gate(); returns at once.
  void close_gate(const std::string& prefix);
  // Waits (up to `timeout`) until `writers` writers are blocked at the gate at once.
  bool wait_at_gate(std::chrono::milliseconds timeout, int writers = 1);
  void open_gate();

  // --- for tests -------------------------------------------------------------------
  // Replaces an object's bytes without any of the write rules (damage, a stray file).
  void poke(const std::string& name, std::vector<uint8_t> bytes);
  std::vector<uint8_t> peek(const std::string& name) const;
  bool contains(const std::string& name) const;
  size_t writes() const;
  uint64_t bytes_stored() const;
  // Writers created but neither committed nor destroyed yet (in-progress uploads).
  size_t open_writers() const { return open_writers_; }
  // The most that were open at once.
  size_t peak_open_writers() const { return peak_open_writers_; }

 private:
  struct Object {
    std::shared_ptr<const std::vector<uint8_t>> bytes;
    int64_t mtime = 0;
    std::chrono::steady_clock::time_point listed_from;
  };
  class Writer;
  friend class Writer;

  void delay() const;
  // Applies fault injection and the gate to a mutation of `name`.
  void before_mutation(std::string_view name);
  void put(const std::string& name, std::vector<uint8_t> bytes, WriteMode mode);
  const Object& find_locked(std::string_view name) const;

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable gate_changed_;
  std::map<std::string, Object, std::less<>> objects_;
  std::string fail_prefix_;
  int fail_count_ = 0;
  int fail_skip_ = 0;
  ErrorCategory fail_category_ = ErrorCategory::io;
  std::string gate_prefix_;
  bool gate_closed_ = false;
  int waiting_at_gate_ = 0;
  size_t writes_ = 0;
  std::atomic<size_t> open_writers_{0};
  std::atomic<size_t> peak_open_writers_{0};
};

}  // namespace arche::backup::test
