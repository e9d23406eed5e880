// The RAID-1 mirror: one BlockDevice over two or more legs (any BlockDevice: raw
// files, block devices, qcow2 images), each leg holding the whole disk at the
// guest's offsets plus the mirror's metadata at its end (mirror_format.h).
//
// Writes: the region's bit in the write-intent bitmap is made durable first, then
// every leg in sync is written (in parallel for large requests), then the block
// checksums are updated. Reads: balanced over the legs in sync and verified against
// the checksums; a copy that fails its checksum or cannot be read is replaced by a
// good copy from another leg (healed), counted and logged with its block number; a
// block bad on every leg is one I/O error naming it, never wrong data.
//
// Live operations (fail, remove, add, replace, rebuild, scrub and its pause/resume)
// are methods of the device itself: thread-safe, and meant to run while other
// threads do I/O — the VM's control socket calls the same methods as the offline
// `arche raid` commands. docs/raid.md has the design, the layout and the ordering.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/progress.h"
#include "core/thread_pool.h"
#include "image/block_device.h"
#include "image/mirror/checksum_table.h"
#include "image/mirror/mirror_format.h"
#include "image/mirror/region_locks.h"
#include "image/mirror/write_intent.h"

namespace arche::image::mirror {

struct MirrorOptions {
  bool writable = false;
  bool force_share = false;  // read-only: read legs another process writes
  bool no_barriers = false;  // skip fdatasync (files that are not live yet)
  uint64_t table_cache_bytes = 32ull << 20;
  // How long a region must stay idle before its bitmap bit is cleared (md: 5 s).
  std::chrono::nanoseconds bitmap_clear_delay = std::chrono::seconds(5);
  // Only the legs named are used: recorded legs not named count as missing (and are
  // marked failed by a writable open). `raid assemble` uses this.
  bool exact_legs = false;
  // Tests: wraps each leg's device as it is opened (fault injection).
  std::function<std::unique_ptr<BlockDevice>(std::unique_ptr<BlockDevice>)> wrap_leg;
};

// For add/replace: what to do with the new leg's file.
struct NewLegOptions {
  // Take an existing file or device that holds data or another array's superblock
  // (it is overwritten). Without it such a target is refused.
  bool overwrite = false;
};

struct LegStatus {
  uint32_t slot = 0;
  std::string path;
  std::string uuid;
  LegState state = LegState::empty;
  bool present = false;  // opened in this process
  std::string note;      // why a leg is not used ("missing: ...", "stale: ...")
  uint64_t rebuild_cursor = 0;
  int32_t replaces = -1;
  uint64_t healed = 0, read_errors = 0, write_errors = 0;
};

struct MirrorStatus {
  std::string name;  // mirror:A+B
  std::string uuid;
  Geometry geometry;
  uint64_t event = 0;
  bool writable = false;
  std::string state;  // clean, degraded, rebuilding, resync-pending
  std::vector<LegStatus> legs;
  uint64_t dirty_regions = 0;
  uint64_t healed = 0;         // over all legs
  uint64_t unrecoverable = 0;  // reads that failed: no good copy anywhere
  ScrubRecord scrub;
  SyncRecord last_resync, last_rebuild;
  std::vector<EventRecord> events;
  bool background = false;  // a background worker runs rebuilds/scrubs
};

class MirrorDevice;

// One leg as the device keeps it. Slots of legs that are gone keep their record
// (path, uuid) with dev == nullptr.
struct Leg {
  uint32_t slot = 0;
  Uuid uuid{};
  std::string path;
  std::unique_ptr<BlockDevice> dev;  // null: missing, or closed after it failed
  LegLayout layout;
  std::atomic<LegState> state{LegState::empty};
  std::atomic<uint64_t> rebuild_cursor{0};
  int32_t replaces = -1;
  std::atomic<uint64_t> healed{0}, read_errors{0}, write_errors{0};
  std::string note;
  // At assembly: the event of the leg's own superblock, and whether that is older
  // than the array's (an interrupted superblock write, or an old copy of the leg).
  uint64_t own_event = 0;
  bool behind = false;

  bool in_sync() const { return dev && !behind && state.load() == LegState::active; }
  // Receives writes (below its cursor when rebuilding) and metadata.
  bool writable_member() const {
    LegState s = state.load();
    return dev && (s == LegState::active || s == LegState::rebuilding);
  }
};

// What assembly (assemble.h) found: the newest superblock and the legs by slot.
struct Assembly {
  Superblock newest;
  std::vector<std::unique_ptr<Leg>> legs;  // index = slot; null for empty slots
};

class MirrorDevice final : public BlockDevice {
 public:
  MirrorDevice(Assembly assembly, const MirrorOptions& options);
  // Stops background work, flushes, clears the bitmap and records a clean close.
  ~MirrorDevice() override;

  uint64_t size() const override { return geometry_.data_size; }
  bool writable() const override { return options_.writable; }
  std::string format() const override { return "mirror"; }
  // "mirror:" and the absolute paths of the legs in use, joined by '+': the name
  // that opens this array again from anywhere.
  std::string filename() const override;
  std::vector<std::string> files() const override;

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  // The first leg in sync's status, limited to the data area. No host offset: a
  // mirror's bytes live in several files, and readers must come through the checks.
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  uint64_t granularity() const override;
  ImageInfo info() const override;

  // ---- live operations: thread-safe, while other threads do I/O --------------
  // LEG is a slot number or a leg's path (as recorded, or any path to the same file).

  MirrorStatus status() const;
  // Stops using LEG. Refused for the last leg in sync.
  void fail_leg(const std::string& leg);
  // Takes a failed, missing or rebuilding LEG out of the array (its superblock is
  // erased, so it is a plain image afterwards). Refused for a leg in sync.
  void remove_leg(const std::string& leg);
  // NEW_PATH becomes a leg in LEG's slot (which must be free, failed or missing; a
  // slot number one past the last adds a leg). Its rebuild is pending: rebuild()
  // or the background worker copies the data onto it.
  void add_leg(const std::string& leg, const std::string& new_path, const NewLegOptions& options = {});
  // NEW_PATH is rebuilt beside LEG, which stays in use until NEW_PATH is in sync and
  // is then removed. A LEG that is already failed or missing is simply swapped.
  void replace_leg(const std::string& leg, const std::string& new_path, const NewLegOptions& options = {});

  // Runs the pending rebuilds in this thread until they are done (or interrupted:
  // core/interrupt.h; the position is kept). Returns the last rebuild's record;
  // throws when a leg being rebuilt failed on the way.
  SyncRecord rebuild(Progress* progress = nullptr);
  // Scrubs in this thread: reads every block of every leg in sync, verifies, heals.
  // From the start, or with `resume` from where a paused scrub stopped. Returns when
  // done or paused (pause_scrub, an interrupt).
  ScrubRecord scrub(bool resume, Progress* progress = nullptr);

  // The background worker (for a running VM): rebuilds pending legs, then runs a
  // scrub that is running. start_scrub/resume_scrub hand it a scrub.
  void start_background();
  void stop_background();
  void start_scrub();
  void resume_scrub();
  // Stops a running scrub (foreground or background) at the next region boundary
  // and records where it was.
  void pause_scrub();
  // Blocks until the background worker has nothing left to do; throws when it
  // stopped on an error.
  void wait_background_idle();

  // Bitmap pages written so far (tests and the bench count them).
  uint64_t bitmap_writes() const { return intent_->page_writes(); }

 private:
  friend class MirrorTestAccess;

  // ---- mirror_io.cpp: the data path
  struct Copy {  // one leg's copy of a block
    Leg* leg = nullptr;
    std::vector<uint8_t> data;
    bool read_ok = true;
  };
  void write_range(uint64_t offset, uint64_t length, const uint8_t* data, bool zero_unmap);
  void write_to_legs(uint64_t offset, uint64_t length, const uint8_t* data, bool zero_unmap);
  void read_plain(uint64_t offset, std::span<uint8_t> out, bool region_locked);
  void read_verified(uint64_t offset, std::span<uint8_t> out, bool region_locked);
  // The good copy of block `b` into `out` (block-sized), healing bad copies.
  // region_locked: the caller holds the region so it cannot change.
  void recover_block(uint64_t b, std::span<uint8_t> out, bool region_locked);
  // Given every leg's copy of block b, picks the good one and rewrites the others.
  // Returns the good copy's index, or -1 when there is none.
  int repair_block(uint64_t b, std::vector<Copy>& copies, bool from_scrub);
  // Rewrites one bad copy of block b from the good one; counts and logs it.
  void heal_copy(uint64_t b, Copy& bad, const Copy& good, EventKind kind, bool from_scrub);
  Leg* pick_read_leg();
  std::vector<Leg*> in_sync_legs() const;
  std::vector<Leg*> writable_legs() const;
  Leg* primary() const;  // the first leg in sync
  // fn(leg) on every leg, in parallel when asked; the exceptions by leg.
  std::vector<std::exception_ptr> for_legs(const std::vector<Leg*>& legs, bool parallel,
                                           const std::function<void(Leg&)>& fn);
  // A leg's I/O failed: counts it and fails the leg (durably) unless it is the last
  // in sync. Returns false when it is the last one (the caller reports the error).
  bool leg_error(Leg& leg, const std::exception_ptr& error, bool on_write);
  // After one operation on several legs: fails the legs it failed on, unless no leg
  // in sync succeeded; then nothing is failed and the first error is thrown.
  void settle(const std::vector<Leg*>& legs, const std::vector<std::exception_ptr>& errors, bool on_write);
  uint64_t granularity_locked() const;
  void sync_legs(const std::vector<Leg*>& legs);
  void write_bitmap_page(uint64_t page, std::span<const uint8_t> bytes, bool sync);
  void write_table_page(uint64_t page, std::span<const uint8_t> bytes);
  void read_table_page(uint64_t page, std::span<uint8_t> out);
  bool region_unsynced(uint64_t region) const;
  void require_writable(const char* op) const;

  // ---- mirror_members.cpp: membership and superblocks
  Leg& leg_named(const std::string& leg) const;
  uint32_t slot_named(const std::string& leg) const;
  // Fails the leg and records it durably; false (and nothing done) when it is the
  // last leg in sync.
  bool try_fail(Leg& leg, const std::string& why);
  uint64_t write_superblocks();  // returns the event written
  Superblock superblock_for(const Leg& leg) const;  // meta_mutex_ held
  void record_event(EventKind kind, uint32_t slot, uint64_t block);
  void push_event_locked(EventKind kind, uint32_t slot, uint64_t block);  // meta_mutex_ held
  void refresh_names();  // after the leg set changed
  uint32_t vacant_slot(const std::string& leg) const;
  // was_member: the file was this slot's leg, so its data may be overwritten.
  std::unique_ptr<Leg> prepare_new_leg(uint32_t slot, const std::string& path, const NewLegOptions& options,
                                       bool was_member) const;
  void install_new_leg(std::unique_ptr<Leg> leg);  // config_ held exclusively
  void erase_leg(uint32_t slot);                   // config_ held exclusively

  // ---- mirror_sync.cpp: resync, rebuild, scrub, background
  // At a writable open: makes the regions the bitmap marks equal on every leg (and
  // on legs that are behind), then records the open and clears the bitmap.
  void resync_dirty_regions();
  void resync_region(uint64_t region, SyncRecord& record);
  // One region of a pending rebuild. Returns false when no rebuild is pending.
  bool rebuild_step(Progress* progress);
  void finish_rebuild(uint32_t slot);
  // Copies one region onto a leg being rebuilt; false when that leg failed.
  bool copy_region_to(Leg& target, uint64_t region);
  // Verified read for a copy: a block bad on every leg does not stop it.
  void read_for_copy(uint64_t offset, std::span<uint8_t> out);
  // One region of the running scrub. Returns false when there is nothing to do.
  bool scrub_step(Progress* progress);
  void scrub_region(uint64_t region);
  void background_loop();
  bool has_pending_rebuild() const;
  bool has_background_work() const;

  MirrorOptions options_;
  Geometry geometry_;
  Uuid array_;
  mutable std::mutex name_mutex_;
  std::string name_;  // filename(), kept apart so error messages never need config_
  std::vector<std::string> files_;

  // Guards the leg set: I/O holds it shared; adding and removing legs exclusively.
  mutable std::shared_mutex config_;
  std::vector<std::unique_ptr<Leg>> legs_;

  // Guards the superblock contents (meta_) and their writing.
  mutable std::mutex meta_mutex_;
  Superblock meta_;
  std::atomic<bool> stats_changed_{false};

  std::unique_ptr<ChecksumTable> table_;
  std::unique_ptr<WriteIntent> intent_;
  RegionLocks region_locks_;
  BlockLocks block_locks_;
  std::vector<bool> unsynced_;  // regions  // read-only opens of an array that needs a resync
  std::atomic<uint64_t> next_read_{0};
  ThreadPool pool_;

  // Background work and scrub control.
  std::mutex work_mutex_;
  std::condition_variable work_cv_;
  std::thread worker_;
  std::atomic<bool> worker_stop_{false};
  bool worker_busy_ = false;
  bool worker_kicked_ = false;
  std::string worker_error_;  // why the background work last stopped
  std::atomic<bool> background_running_{false};
  // One rebuild or scrub step at a time (foreground or background); guards the rest.
  std::mutex step_mutex_;
  SyncRecord rebuild_progress_;  // the running rebuild, recorded when it ends
  std::chrono::steady_clock::time_point rebuild_started_, last_checkpoint_;
};

}  // namespace arche::image::mirror
