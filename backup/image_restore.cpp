#include "backup/image_restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/filesystem.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backup/chunk_list.h"
#include "backup/pipeline.h"
#include "backup/temp_files.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/format.h"

namespace arche::backup {

namespace {

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

std::vector<Id> load_list_block(Repository& repo, const ImageRecord& image, size_t block) {
  const std::string what = fmt::format("image {}: chunk list {}", image.name, block);
  std::vector<Id> ids = decode_image_list(repo.read_blob(image.lists[block], what), what);
  const uint64_t expected = std::min<uint64_t>(kImageListEntries, image.chunk_count - block * kImageListEntries);
  if (ids.size() != expected)
    fail(ErrorCategory::corrupt, "{}: {} entries, expected {}", what, ids.size(), expected);
  return ids;
}

// Where a restored image goes.
class Target {
 public:
  virtual ~Target() = default;
  virtual uint64_t size() const = 0;
  virtual uint64_t block() const = 0;  // the unit of "all zero: skip"
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual void zero(uint64_t offset, uint64_t length) = 0;
  virtual void finish(bool sync) = 0;
};

// qcow2 (and any other format): through the image driver.
class DeviceTarget final : public Target {
 public:
  DeviceTarget(const std::string& path, const std::string& format, bool sync) {
    image::OpenOptions open;
    open.writable = true;
    open.format = format;
    open.open_backing = false;
    open.no_barriers = !sync;  // a file under a temporary name needs no ordering
    dev_ = image::open_image(path, open);
  }
  uint64_t size() const override { return dev_->size(); }
  uint64_t block() const override { return std::max<uint64_t>(dev_->granularity(), 4096); }
  void write(uint64_t offset, std::span<const uint8_t> data) override { dev_->write(offset, data); }
  void zero(uint64_t offset, uint64_t length) override { dev_->write_zeroes(offset, length, true); }
  void finish(bool sync) override {
    if (sync) dev_->flush();
    dev_.reset();
  }

 private:
  std::unique_ptr<image::BlockDevice> dev_;
};

// Raw files and block devices, written with O_DIRECT where the file system allows:
// a restore of many gigabytes streams to the disk instead of through the page cache
// (which, on the machines measured, cost more than the decryption). Pieces that are
// not 4 KiB-aligned (the end of an odd-sized image) go through a buffered descriptor.
class RawTarget final : public Target {
 public:
  RawTarget(const std::string& path, uint64_t size, bool device) {
    if (device) {
      buffered_ = File::open(path, OpenMode::read_write);
    } else {
      buffered_ = File::open(path, OpenMode::create_new);
      buffered_.truncate(size);
    }
    try {
      direct_ = File::open(path, OpenMode::read_write, O_DIRECT);
    } catch (const Error&) {
      // no O_DIRECT here (tmpfs, some network file systems): buffered it is
    }
  }
  uint64_t size() const override { return buffered_.size(); }
  uint64_t block() const override { return kAlign; }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (direct_.is_open() && !direct_failed_ && offset % kAlign == 0 && data.size() >= kAlign) {
      const size_t aligned = data.size() / kAlign * kAlign;
      if (write_direct(offset, data.first(aligned))) {
        offset += aligned;
        data = data.subspan(aligned);
      }
    }
    if (!data.empty()) buffered_.write_all(offset, data);
  }
  void zero(uint64_t offset, uint64_t length) override {
    if (buffered_.zero_range(offset, length)) return;
    std::vector<uint8_t> zeros(std::min<uint64_t>(length, 1u << 20), 0);
    for (uint64_t done = 0; done < length;) {
      uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
      buffered_.write_all(offset + done, std::span(zeros.data(), n));
      done += n;
    }
  }
  void finish(bool sync) override {
    if (sync) buffered_.sync_data();  // also flushes the disk cache for the direct writes
  }

 private:
  static constexpr size_t kAlign = 4096;
  static constexpr size_t kBounce = 4u << 20;

  // False when the file system refuses (EINVAL): then everything goes buffered.
  bool write_direct(uint64_t offset, std::span<const uint8_t> data) {
    struct Free {
      void operator()(uint8_t* p) const { std::free(p); }
    };
    thread_local std::unique_ptr<uint8_t, Free> bounce(static_cast<uint8_t*>(std::aligned_alloc(kAlign, kBounce)));
    if (!bounce) fail(ErrorCategory::no_space, "out of memory for the restore buffer");
    for (size_t done = 0; done < data.size();) {
      const size_t n = std::min(kBounce, data.size() - done);
      std::memcpy(bounce.get(), data.data() + done, n);
      for (size_t put = 0; put < n;) {
        ssize_t w = ::pwrite(direct_.fd(), bounce.get() + put, n - put, static_cast<off_t>(offset + done + put));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EINVAL && done == 0 && put == 0) {
          direct_failed_ = true;
          return false;
        }
        if (w < 0) throw_errno(errno, fmt::format("write {} at offset {}", direct_.path(), offset + done + put));
        put += static_cast<size_t>(w);
      }
      done += n;
    }
    return true;
  }

  File buffered_, direct_;
  std::atomic<bool> direct_failed_{false};
};

}  // namespace

std::vector<Id> load_image_chunks(Repository& repo, const ImageRecord& image) {
  std::vector<Id> all;
  all.reserve(image.chunk_count);
  for (size_t b = 0; b < image.lists.size(); ++b) {
    std::vector<Id> ids = load_list_block(repo, image, b);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  return all;
}

ImageRestoreStats restore_image(Repository& repo, const ImageRecord& image, const std::string& target,
                                const ImageRestoreOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const bool device = is_block_device(target);
  const std::string format = device ? "raw" : image::driver_for(options.format).name();
  if (format != "raw" && format != "qcow2")
    fail(ErrorCategory::usage, "restore: images are restored as raw or qcow2, not {}", options.format);
  if (device && !options.overwrite)
    fail(ErrorCategory::exists, "{} is a block device; pass --overwrite to write the image over it", target);
  ImageRestoreStats stats;
  std::unique_ptr<PendingFile> pending;
  std::string write_path = target;
  if (!device) {
    // A restore killed with SIGKILL left its full-size temporary file beside the target.
    const boost::filesystem::path parent = boost::filesystem::absolute(target).parent_path();
    for (const RemovedTemp& t : remove_dead_temp_files(parent.string())) {
      warn("removed {} ({}), left by an interrupted restore (pid {})", t.path, format_size(t.size), t.pid);
      ++stats.removed_temporaries;
    }
    pending = std::make_unique<PendingFile>(target, options.overwrite);
    write_path = pending->temp_path();
  }
  std::unique_ptr<Target> out;
  if (format == "raw") {
    out = std::make_unique<RawTarget>(write_path, image.size, device);
  } else {
    image::CreateOptions create;
    create.format = format;
    create.size = image.size;
    image::create_image(write_path, create);
    out = std::make_unique<DeviceTarget>(write_path, format, options.sync);
  }
  if (out->size() < image.size)
    fail(ErrorCategory::usage, "{} holds {} bytes, the image needs {}", target, out->size(), image.size);
  // A new file reads as zeros; a device must get zeros where the image has holes.
  const bool fresh = !device;
  const uint64_t block = out->block();

  stats.size = image.size;
  std::atomic<uint64_t> written{0};
  Progress progress("restore " + image.name, 0);
  uint64_t total = 0;
  auto write_chunk = [&](uint64_t offset, const Id& id, uint64_t length) {
    thread_local std::vector<uint8_t> frame, scratch;
    const std::string what = fmt::format("image {} at offset {:#x}", image.name, offset);
    std::span<const uint8_t> plain = repo.read_blob(id, frame, scratch, what);
    if (plain.size() != length)
      fail(ErrorCategory::corrupt, "{}: chunk {} has {} bytes, expected {}", what, id.short_hex(), plain.size(), length);
    if (!fresh) {
      out->write(offset, plain);
    } else {
      // Write runs of non-zero blocks; the rest of a new file is a hole already.
      for (uint64_t pos = 0; pos < length;) {
        uint64_t n = std::min(block, length - pos);
        if (all_zero(plain.subspan(pos, n))) {
          pos += n;
          continue;
        }
        uint64_t end = pos + n;
        while (end < length) {
          uint64_t m = std::min(block, length - end);
          if (all_zero(plain.subspan(end, m))) break;
          end += m;
        }
        out->write(offset + pos, plain.subspan(pos, end - pos));
        pos = end;
      }
    }
    written += length;
    progress.add(length);
  };

  // Declared after what its jobs use, so it is destroyed (and drained) first.
  Pipeline pipeline(options.threads, 4 * std::max(1u, options.threads ? options.threads : ThreadPool::default_threads()));
  for (size_t b = 0; b < image.lists.size(); ++b) {
    std::vector<Id> ids = load_list_block(repo, image, b);
    struct Work {
      uint64_t chunk;
      uint32_t pack, offset;
    };
    std::vector<Work> work;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t chunk = b * kImageListEntries + i;
      const uint64_t offset = chunk * image.chunk_size;
      const uint64_t length = std::min<uint64_t>(image.chunk_size, image.size - offset);
      if (ids[i].is_zero()) {
        ++stats.holes;
        if (!fresh) out->zero(offset, length);
        continue;
      }
      auto where = repo.index().find(ids[i]);
      if (!where) repo.fail_missing_chunk(ids[i], fmt::format("image {} at offset {:#x}", image.name, offset));
      work.push_back({chunk, where->pack, where->offset});
      total += length;
    }
    progress.set_total(total);
    // In pack order: each pack is read front to back once.
    std::sort(work.begin(), work.end(),
              [](const Work& x, const Work& y) { return x.pack != y.pack ? x.pack < y.pack : x.offset < y.offset; });
    for (const Work& w : work) {
      const uint64_t offset = w.chunk * image.chunk_size;
      const uint64_t length = std::min<uint64_t>(image.chunk_size, image.size - offset);
      const Id id = ids[w.chunk - b * kImageListEntries];
      pipeline.submit([&write_chunk, offset, id, length] { write_chunk(offset, id, length); });
    }
    pipeline.wait();
    stats.chunks += work.size();
  }
  out->finish(options.sync || device);
  out.reset();  // closes the image: its metadata is complete
  progress.finish();
  if (pending) pending->commit(options.sync);
  stats.bytes_written = written;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace arche::backup
