#include "volume/extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/units.h"
#include "image/foreign/sparse_write.h"
#include "volume/volume_path.h"

namespace arche::volume {

namespace {

constexpr size_t kChunk = 1 * MiB;

struct timespec to_timespec(int64_t ns) {
  struct timespec t {};
  t.tv_sec = static_cast<time_t>(ns / 1000000000);
  t.tv_nsec = static_cast<long>(ns % 1000000000);
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

bool safe_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

class Extractor {
 public:
  Extractor(Filesystem& fs, const ExtractOptions& options)
      : fs_(fs), options_(options), progress_("extract", 0), is_root_(::geteuid() == 0) {}

  ExtractStats run(std::string_view path, const std::string& target) {
    boost::filesystem::create_directories(target);
    const std::string inner = normalize_path(path);
    if (inner == "/") {
      for (const DirEntry& e : fs_.list("/")) entry("/" + e.name, e.name, e.stat, target);
    } else {
      const std::string name = inner.substr(inner.rfind('/') + 1);
      entry(inner, name, fs_.stat(inner), target);
    }
    // Directories last and deepest first, so writing into them does not change their times.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) apply_metadata(it->first, it->second);
    progress_.finish();
    return stats_;
  }

 private:
  void warning(const std::string& text) {
    warn("{}", text);
    ++stats_.warnings;
  }

  void entry(const std::string& path, const std::string& name, const FileStat& st, const std::string& parent) {
    interrupt::check();
    if (!safe_name(name)) {
      warning(fmt::format("{}: a name that cannot be a file name here; skipped", path));
      return;
    }
    const std::string dest = parent + "/" + name;
    switch (st.type) {
      case FileType::directory: return directory(path, st, dest);
      case FileType::regular: return file(path, st, dest);
      case FileType::symlink: {
        const std::string target = fs_.readlink(path);
        remove_existing(dest);
        if (::symlink(target.c_str(), dest.c_str()) != 0) throw_errno(errno, "create symbolic link " + dest);
        ++stats_.links;
        apply_metadata(dest, st);
        return;
      }
      case FileType::fifo:
        remove_existing(dest);
        if (::mkfifo(dest.c_str(), 0600) != 0) throw_errno(errno, "create FIFO " + dest);
        ++stats_.other;
        apply_metadata(dest, st);
        return;
      case FileType::block_device:
      case FileType::char_device: warning(fmt::format("{}: a device node; not extracted", path)); return;
      case FileType::socket: warning(fmt::format("{}: a socket; not extracted", path)); return;
      case FileType::unknown: warning(fmt::format("{}: of unknown type (damaged inode?); not extracted", path)); return;
    }
  }

  void remove_existing(const std::string& dest) {
    struct stat st {};
    if (::lstat(dest.c_str(), &st) != 0) return;
    if (!options_.overwrite) fail(ErrorCategory::exists, "{} exists (pass --overwrite to replace it)", dest);
    if (S_ISDIR(st.st_mode)) fail(ErrorCategory::exists, "{} is a directory; not replacing it", dest);
    if (::unlink(dest.c_str()) != 0) throw_errno(errno, "remove " + dest);
  }

  void directory(const std::string& path, const FileStat& st, const std::string& dest) {
    if (::mkdir(dest.c_str(), 0700) != 0) {
      struct stat existing {};
      if (errno != EEXIST) throw_errno(errno, "create directory " + dest);
      if (!options_.overwrite) fail(ErrorCategory::exists, "{} exists (pass --overwrite to merge into it)", dest);
      if (::lstat(dest.c_str(), &existing) != 0 || !S_ISDIR(existing.st_mode))
        fail(ErrorCategory::exists, "{} exists and is not a directory", dest);
    }
    ++stats_.dirs;
    dirs_.emplace_back(dest, st);
    for (const DirEntry& e : fs_.list(path)) entry(path == "/" ? "/" + e.name : path + "/" + e.name, e.name, e.stat, dest);
  }

  void file(const std::string& path, const FileStat& st, const std::string& dest) {
    if (st.nlink > 1) {
      auto [it, first] = links_.try_emplace(st.inode, dest);
      if (!first) {
        remove_existing(dest);
        if (::link(it->second.c_str(), dest.c_str()) == 0) {
          ++stats_.files;
          return;
        }
        // A link across what the host allows: write a copy instead.
      }
    }
    struct stat existing {};
    if (::lstat(dest.c_str(), &existing) == 0) {
      if (S_ISDIR(existing.st_mode)) fail(ErrorCategory::exists, "{} is a directory; not replacing it with a file", dest);
      if (!options_.overwrite) fail(ErrorCategory::exists, "{} exists (pass --overwrite to replace it)", dest);
    }
    PendingFile pending(dest, options_.overwrite);
    File out = File::open(pending.temp_path(), OpenMode::create_new, O_NOFOLLOW);
    out.truncate(st.size);
    buffer_.resize(kChunk);
    uint64_t offset = 0;
    while (offset < st.size) {
      interrupt::check();
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, st.size - offset));
      const size_t got = fs_.read(path, offset, std::span(buffer_.data(), want));
      if (got == 0) fail(ErrorCategory::corrupt, "{}: the file ends at {} bytes, not at its size {}", path, offset, st.size);
      // The file was truncated to its size, so zero pages left unwritten stay holes.
      image::foreign::write_into_zeroed(out, offset, std::span(buffer_.data(), got));
      offset += got;
      stats_.bytes += got;
      progress_.add(got);
    }
    ::fchmod(out.fd(), 0600);
    out = File();
    pending.commit(options_.sync);
    ++stats_.files;
    apply_metadata(dest, st);
  }


  void apply_metadata(const std::string& dest, const FileStat& st) {
    const bool link = st.type == FileType::symlink;
    if (is_root_ && ::lchown(dest.c_str(), st.uid, st.gid) != 0)
      warning(fmt::format("cannot set the owner of {}: {}", dest, std::strerror(errno)));
    if (!link && ::chmod(dest.c_str(), st.mode & 07777) != 0)  // after chown, which clears set-id bits
      warning(fmt::format("cannot set the mode of {}: {}", dest, std::strerror(errno)));
    struct timespec times[2] = {to_timespec(st.atime_ns), to_timespec(st.mtime_ns)};
    if (::utimensat(AT_FDCWD, dest.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      warning(fmt::format("cannot set the times of {}: {}", dest, std::strerror(errno)));
  }

  Filesystem& fs_;
  const ExtractOptions& options_;
  Progress progress_;
  bool is_root_;
  ExtractStats stats_;
  std::vector<uint8_t> buffer_;
  std::vector<std::pair<std::string, FileStat>> dirs_;
  std::map<uint64_t, std::string> links_;  // inode -> first extracted name
};

}  // namespace

ExtractStats extract(Filesystem& fs, std::string_view path, const std::string& target_dir,
                     const ExtractOptions& options) {
  std::string target = boost::filesystem::absolute(target_dir).lexically_normal().string();
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target == "/") target.clear();
  return Extractor(fs, options).run(path, target.empty() ? "/" : target);
}

}  // namespace arche::volume
