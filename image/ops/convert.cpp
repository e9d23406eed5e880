#include "image/ops/convert.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/mmap.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "core/units.h"

namespace arche::image {

namespace {

// Work is cut into aligned windows; each worker reads the data extents of a window,
// skips blocks that are all zero and writes the rest.
constexpr uint64_t kWindow = 2 * MiB;

struct Piece {
  uint64_t offset;
  uint64_t length;
  const uint8_t* mapped = nullptr;  // the bytes in a read-only mapping of their file
  const File* file = nullptr;       // for cloning: the file that stores them verbatim,
  uint64_t host = 0;                // at this offset
};

struct Window {
  uint64_t offset;
  uint64_t length;
  std::vector<Piece> data;
};

// The files of the source chain, each opened once, for data they store verbatim
// (uncompressed at a known host offset). Such data is written to the target
// straight from a read-only mapping of its file (one copy, page cache to page
// cache, instead of a read into a buffer and a write out of it) and, on the
// reflink path, shared with the target when the file is on the target's file
// system.
class SourceFiles {
 public:
  // map: make the mappings (not for a source another process may shrink, -U);
  // clone_target: the file whose file system the reflink path shares with ("": none).
  SourceFiles(bool map, const std::string& clone_target) : map_(map) {
    struct stat st {};
    if (!clone_target.empty() && ::stat(clone_target.c_str(), &st) == 0) clone_device_ = st.st_dev;
  }

  const uint8_t* mapped(const Extent& e) {
    if (!map_ || !stored_verbatim(e)) return nullptr;
    const Mapping& m = source(e.file).mapping;
    if (!m || !range_within(*e.host_offset, e.length, m.size())) return nullptr;
    return m.data() + *e.host_offset;
  }

  const File* clonable(const Extent& e) {
    if (!clone_device_ || !stored_verbatim(e)) return nullptr;
    const Source& s = source(e.file);
    return s.file && s.device == clone_device_ ? &*s.file : nullptr;
  }

 private:
  struct Source {
    std::optional<File> file;
    std::optional<dev_t> device;  // regular files only
    Mapping mapping;
  };

  static bool stored_verbatim(const Extent& e) {
    return e.host_offset && !e.compressed && e.kind == ExtentKind::data;
  }

  const Source& source(const std::string& path) {
    auto it = sources_.find(path);
    if (it != sources_.end()) return it->second;
    Source s;
    try {
      s.file = File::open(path, OpenMode::read_only);
      struct stat st {};
      if (::fstat(s.file->fd(), &st) == 0 && S_ISREG(st.st_mode)) s.device = st.st_dev;
      const uint64_t size = s.file->size();
      if (map_ && size > 0) s.mapping = Mapping::of_file(s.file->fd(), size, 0, false);
    } catch (const Error&) {
      // Not mappable (a pipe, a special device): fall back to reads.
    }
    return sources_.emplace(path, std::move(s)).first->second;
  }

  const bool map_;
  std::optional<dev_t> clone_device_;
  std::map<std::string, Source> sources_;
};

std::vector<Window> plan_windows(BlockDevice& source, uint64_t window, SourceFiles& files, uint64_t* data_bytes) {
  std::vector<Window> windows;
  *data_bytes = 0;
  for (const Extent& e : source.map()) {
    if (e.kind != ExtentKind::data) continue;
    interrupt::check();
    *data_bytes += e.length;
    const uint8_t* mapped = files.mapped(e);
    const File* file = files.clonable(e);
    for (uint64_t pos = e.offset; pos < e.offset + e.length;) {
      uint64_t w = align_down(pos, window);
      uint64_t end = std::min(e.offset + e.length, w + window);
      if (windows.empty() || windows.back().offset != w)
        windows.push_back({w, std::min(window, source.size() - w), {}});
      windows.back().data.push_back({pos, end - pos, mapped ? mapped + (pos - e.offset) : nullptr, file,
                                     file ? *e.host_offset + (pos - e.offset) : 0});
      pos = end;
    }
  }
  return windows;
}

// The reflink path: the whole blocks of each piece share the source's extents
// (BlockDevice::clone_from); `rest` gets what is left to copy — the pieces' edges,
// and everything once the file system has refused, after which cloning stays off.
// Returns the bytes cloned.
uint64_t clone_window(BlockDevice& target, const Window& w, uint64_t block, std::atomic<bool>& cloning, Window& rest) {
  // File systems share whole blocks of their own; 4096 is the usual size, and a
  // piece whose source offset is not a multiple of it is copied rather than
  // refused (which would turn cloning off for the whole run).
  constexpr uint64_t kFileSystemBlock = 4096;
  rest = {w.offset, w.length, {}};
  uint64_t cloned = 0;
  for (const Piece& p : w.data) {
    const uint64_t begin = align_up(p.offset, block), end = align_down(p.offset + p.length, block);
    const uint64_t host = p.host + (begin - p.offset);
    const bool eligible = p.file && end > begin && host % kFileSystemBlock == 0;
    if (!eligible || !cloning) {
      rest.data.push_back(p);
      continue;
    }
    if (!target.clone_from(begin, *p.file, host, end - begin)) {
      cloning = false;
      rest.data.push_back(p);
      continue;
    }
    cloned += end - begin;
    if (begin > p.offset) rest.data.push_back({p.offset, begin - p.offset, p.mapped});
    if (end < p.offset + p.length)
      rest.data.push_back({end, p.offset + p.length - end, p.mapped ? p.mapped + (end - p.offset) : nullptr});
  }
  return cloned;
}

// The window's bytes without copying, when one mapped piece covers all of its
// data and starts and ends on block boundaries (or at the end of the disk).
const uint8_t* direct_view(const Window& w, uint64_t block, uint64_t disk_size) {
  if (w.data.size() != 1 || !w.data[0].mapped) return nullptr;
  const Piece& p = w.data[0];
  uint64_t end = p.offset + p.length;
  if (p.offset % block || (end % block && end != disk_size)) return nullptr;
  return p.mapped;
}

// Turn-taking for targets that must be written front to back (a streamOptimized
// VMDK): windows are still read in parallel, then each waits until every earlier
// window has written. parallel_for hands windows out in increasing order, so every
// earlier window is already being worked on. A failure wakes the waiting windows,
// which give up quietly, so that the failure itself is what gets reported.
class WindowTurns {
 public:
  explicit WindowTurns(bool active) : active_(active) {}
  // False when another window failed.
  bool wait(size_t window) {
    if (!active_) return true;
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return turn_ == window || aborted_; });
    return !aborted_;
  }
  void finish(size_t window, bool ok) {
    if (!active_) return;
    std::lock_guard lock(mutex_);
    if (!ok) aborted_ = true;
    else if (turn_ == window) ++turn_;
    changed_.notify_all();
  }

 private:
  bool active_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t turn_ = 0;
  bool aborted_ = false;
};

// Passes the turn on when a window's work ends, by return or by exception.
struct TurnRelease {
  WindowTurns& turns;
  size_t window;
  int exceptions = std::uncaught_exceptions();
  ~TurnRelease() { turns.finish(window, std::uncaught_exceptions() == exceptions); }
};

// A window of a compressed target: its non-zero blocks are compressed on this
// thread, then, in the window's turn, stored with one write_packed() call per run of
// them; zero blocks between runs are written as zeros unless the target reads as zeros
// already. Returns the bytes of data stored.
uint64_t write_packed_window(BlockDevice& target, uint64_t window_offset, const uint8_t* bytes, uint64_t begin,
                             uint64_t end, uint64_t block, size_t packed_bound, bool target_is_zero,
                             WindowTurns& turns, size_t turn) {
  struct Item {
    PackedBlock b;
    bool zero;
  };
  thread_local std::vector<uint8_t> arena;
  thread_local std::vector<Item> items;
  thread_local std::vector<PackedBlock> run;
  const uint64_t count = div_round_up(end - begin, block);
  if (arena.size() < count * packed_bound) arena.resize(count * packed_bound);
  items.clear();
  uint64_t stored = 0;
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t pos = begin + k * block;
    std::span<const uint8_t> data(bytes + pos, std::min(block, end - pos));
    if (all_zero(data)) {
      items.push_back({{window_offset + pos, data, {}}, true});
      continue;
    }
    std::span<uint8_t> out(arena.data() + k * packed_bound, packed_bound);
    items.push_back({{window_offset + pos, data, out.first(target.pack(data, out))}, false});
    stored += data.size();
  }
  if (!turns.wait(turn)) return 0;
  run.clear();
  for (const Item& item : items) {
    if (!item.zero) {
      run.push_back(item.b);
      continue;
    }
    if (!run.empty()) target.write_packed(run);
    run.clear();
    if (!target_is_zero) target.write_zeroes(item.b.offset, item.b.block.size(), true);
  }
  if (!run.empty()) target.write_packed(run);
  return stored;
}

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace

ConvertStats convert(const std::string& source_path, const std::string& target_path, const ConvertOptions& options) {
  auto started = std::chrono::steady_clock::now();
  OpenOptions source_options;
  source_options.format = options.source_format;
  source_options.force_share = options.force_share;
  std::unique_ptr<BlockDevice> source = open_image(source_path, source_options);
  const uint64_t size = source->size();

  CreateOptions create = options.target;
  create.size = size;
  create.final_path = target_path;
  const FormatDriver& driver = driver_for(create.format);

  // A block device is written in place; a file is built under a temporary name.
  const bool in_place = is_block_device(target_path);
  std::unique_ptr<PendingFile> pending;
  std::string write_path = target_path;
  if (in_place) {
    if (!create.overwrite)
      fail(ErrorCategory::exists, "{} is a block device; pass --overwrite to write over it", target_path);
    driver.create(target_path, create);
  } else {
    pending = std::make_unique<PendingFile>(target_path, create.overwrite);
    write_path = pending->temp_path();
    driver.create(write_path, create);
  }

  OpenOptions target_options;
  target_options.writable = true;
  target_options.format = driver.name();
  target_options.open_backing = false;
  target_options.no_barriers = !options.durable;  // a temporary file needs no ordering
  std::unique_ptr<BlockDevice> target = open_image(write_path, target_options);
  if (options.compress && !target->supports_compressed_writes())
    fail(ErrorCategory::usage, "format {} cannot store compressed data (-c)", target->format());
  // A fresh file reads as zeros everywhere; a device must be zeroed where the source is.
  const bool target_is_zero = !in_place && create.backing_file.empty();
  const uint64_t block = target->granularity();

  uint64_t data_bytes = 0;
  const bool sequential = target->sequential_writes_only();
  // Compressed targets: every worker compresses its window's blocks before its
  // turn, so all cores compress and only the storing is serial.
  const bool packing = options.compress || target->compresses_every_write();
  const size_t packed_bound = packing ? target->packed_bound() : 0;
  // Reflink: a fresh, uncompressed target on the source's file system shares the
  // source's data extents instead of copying them. Blocks of zeros in the data
  // are then shared too rather than skipped (they cost no space either way).
  const bool reflink = options.reflink && !packing && !sequential && target_is_zero && !options.force_share;
  std::atomic<bool> cloning{reflink};
  std::atomic<uint64_t> cloned{0};
  // Another process may change a shared source (-U): never map it, a shrinking file
  // would fault. Read it through the driver instead.
  SourceFiles files(!options.force_share, reflink ? write_path : "");
  std::vector<Window> windows = plan_windows(*source, std::max(kWindow, block), files, &data_bytes);
  Progress progress("convert", data_bytes);
  std::atomic<uint64_t> written{0};

  WindowTurns turns(sequential);

  ThreadPool pool(options.threads ? options.threads : ThreadPool::default_threads());
  parallel_for(pool, windows.size(), [&](size_t i) {
    interrupt::check();  // on a signal no new window starts; parallel_for rethrows
    TurnRelease release{turns, i};
    thread_local Window rest;
    const Window* todo = &windows[i];
    if (cloning) {
      const uint64_t n = clone_window(*target, windows[i], block, cloning, rest);
      cloned += n;
      progress.add(n);
      todo = &rest;
      if (rest.data.empty()) return;
    }
    const Window& w = *todo;
    // Either the window's data straight from a mapping, or read into a buffer.
    thread_local std::vector<uint8_t> buffer;
    const uint8_t* bytes = direct_view(w, block, size);
    uint64_t begin = 0, length = w.length;
    if (bytes) {
      begin = w.data[0].offset - w.offset;
      length = begin + w.data[0].length;
      bytes -= begin;  // index by position in the window
      progress.add(w.data[0].length);
    } else {
      buffer.assign(w.length, 0);
      for (const Piece& p : w.data) {
        if (p.mapped) std::memcpy(buffer.data() + (p.offset - w.offset), p.mapped, p.length);
        else source->read(p.offset, std::span(buffer.data() + (p.offset - w.offset), p.length));
        progress.add(p.length);
      }
      bytes = buffer.data();
    }
    if (packing) {
      written += write_packed_window(*target, w.offset, bytes, begin, length, block, packed_bound, target_is_zero,
                                     turns, i);
      return;
    }
    if (!turns.wait(i)) return;
    // Write runs of non-zero blocks.
    for (uint64_t pos = begin; pos < length;) {
      uint64_t n = std::min(block, length - pos);
      if (all_zero(std::span(bytes + pos, n))) {
        if (!target_is_zero) target->write_zeroes(w.offset + pos, n, true);
        pos += n;
        continue;
      }
      uint64_t end = pos + n;
      while (end < length) {
        uint64_t m = std::min(block, length - end);
        if (all_zero(std::span(bytes + end, m))) break;
        end += m;
      }
      target->write(w.offset + pos, std::span(bytes + pos, end - pos));
      written += end - pos;
      pos = end;
    }
  });

  if (!target_is_zero && !sequential) {  // (a stream stores nothing where there is no data)
    // The device keeps old content where the source has no data: zero it.
    uint64_t pos = 0;
    for (const Window& w : windows)
      for (const Piece& p : w.data) {
        interrupt::check();
        if (p.offset > pos) target->write_zeroes(pos, p.offset - pos, true);
        pos = p.offset + p.length;
      }
    if (pos < size) target->write_zeroes(pos, size - pos, true);
  }

  // A sequential target completes its stream in flush(), where errors surface.
  if (options.durable || sequential) target->flush();
  target.reset();  // closes: metadata written
  progress.finish();
  if (pending) pending->commit(options.durable);
  uint64_t file_bytes = File::open(target_path, OpenMode::read_only).allocated_bytes();

  ConvertStats stats;
  stats.virtual_size = size;
  stats.bytes_read = data_bytes;
  stats.bytes_written = written;
  stats.bytes_cloned = cloned;
  stats.file_bytes = file_bytes;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace arche::image
