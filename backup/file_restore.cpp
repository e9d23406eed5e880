#include "backup/file_restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "backup/pipeline.h"
#include "backup/temp_files.h"
#include "backup/tree_store.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/units.h"

namespace fs = boost::filesystem;

namespace arche::backup {

namespace {

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

// The selected paths as a tree of names: restore what lies below a selected path and
// the directories leading to it.
struct Selection {
  std::map<std::string, Selection> children;
  bool whole = false;
  bool found = false;  // marked while restoring, to report paths not in the snapshot
};

// Writes `data` at `offset`, skipping 4 KiB blocks of zeros: the file was truncated
// to its size, so they stay holes (a sparse file restores sparse).
void write_nonzero_blocks(const File& file, uint64_t offset, std::span<const uint8_t> data) {
  constexpr size_t kBlock = 4096;
  for (size_t pos = 0; pos < data.size();) {
    size_t n = std::min(kBlock, data.size() - pos);
    if (all_zero(data.subspan(pos, n))) {
      pos += n;
      continue;
    }
    size_t end = pos + n;
    while (end < data.size() && !all_zero(data.subspan(end, std::min(kBlock, data.size() - end))))
      end += std::min(kBlock, data.size() - end);
    file.write_all(offset + pos, data.subspan(pos, end - pos));
    pos = end;
  }
}

// A file being restored: written under a temporary name beside its destination and
// renamed there once its last chunk is in, so a restore that is killed, stopped by a
// full disk or interrupted never leaves a file at its name with wrong content.
struct PendingRestore {
  std::string temp, dest;
  File file;
  std::atomic<size_t> remaining{0};  // chunks not yet written
  std::atomic<bool> damaged{false};  // a chunk could not be read: the file is dropped
};

class FileRestorer {
 public:
  FileRestorer(Repository& repo, const std::string& target, const FileRestoreOptions& options)
      : repo_(repo),
        target_(target),
        options_(options),
        progress_("restore files", 0),
        is_root_(::geteuid() == 0),
        pipeline_(options.threads, 4 * (options.threads ? options.threads : ThreadPool::default_threads())) {}

  FileRestoreStats run(const Snapshot& snapshot) {
    const auto started = std::chrono::steady_clock::now();
    if (snapshot.tree.empty()) fail(ErrorCategory::not_found, "snapshot {} holds no files", snapshot.name);
    Selection selection;
    selection.whole = options_.paths.empty();
    for (const std::string& p : options_.paths) {
      Selection* s = &selection;
      // create stored absolute paths (normalize_backup_paths): a relative path means
      // the same file seen from the current directory.
      for (const fs::path& part : fs::absolute(p).lexically_normal().relative_path()) {
        if (part == "." || part.empty()) continue;
        s = &s->children[part.string()];
      }
      s->whole = true;
    }
    const std::string root = target_.empty() ? "/" : target_;
    if (fs::is_directory(root)) sweep(root);
    else fs::create_directories(root);
    Tree tree = load_tree(repo_, snapshot.tree, "snapshot " + snapshot.name + ": /");
    try {
      restore_tree(tree, "", selection);
      pipeline_.wait();
      make_links();
    } catch (const Error& e) {
      pipeline_.drain();
      remove_unfinished();
      if (e.category() == ErrorCategory::interrupted)
        fail(ErrorCategory::interrupted,
             "{}: restore stopped; {} restored completely below {}, the files being written were removed and "
             "directory metadata was not applied",
             e.what(), plural(finished_files_, "file", "files"), root);
      throw;
    } catch (...) {
      pipeline_.drain();
      remove_unfinished();
      throw;
    }
    report_missing(selection, "");
    for (const auto& [path, error] : failed_) warn("{} not restored: {}", path, error);
    // Metadata last: files and links first, then directories from the deepest up.
    for (const auto& [path, node] : entries_)
      if (!failed_.count(path)) apply_metadata(path, node);
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) apply_metadata(it->first, it->second);
    progress_.finish();
    stats_.bytes = bytes_;
    stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!failed_.empty())
      fail(ErrorCategory::corrupt,
           "{} file{} could not be restored because the repository is damaged (the rest was restored); run: arche "
           "backup check --read-data",
           failed_.size(), failed_.size() == 1 ? "" : "s");
    return stats_;
  }

 private:
  static std::string plural(uint64_t n, const char* one, const char* many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  }

  void report_missing(const Selection& s, const std::string& path) {
    if (s.whole && !s.found && !path.empty())
      fail(ErrorCategory::not_found, "{} is not in the snapshot", path);
    for (const auto& [name, child] : s.children) report_missing(child, path + "/" + name);
  }

  // Temporary files that killed restores left in a directory we restore into.
  void sweep(const std::string& dir) {
    for (const RemovedTemp& t : remove_dead_temp_files(dir)) {
      warn("removed {} ({}), left by an interrupted restore (pid {})", t.path, format_size(t.size), t.pid);
      ++stats_.removed_temporaries;
    }
  }

  void restore_tree(const Tree& tree, const std::string& rel, Selection& selection) {
    for (const Node& n : tree.nodes) {
      interrupt::check();
      Selection* child_selection = nullptr;
      if (!selection.whole) {
        auto it = selection.children.find(n.name);
        if (it == selection.children.end()) continue;
        child_selection = &it->second;
      }
      const std::string path = rel + "/" + n.name;
      Selection whole;
      whole.whole = true;
      Selection& sel = child_selection ? *child_selection : whole;
      if (sel.whole) sel.found = true;
      restore_node(n, path, sel);
    }
  }

  // Before something other than a regular file is made at `dest`: an existing entry
  // is removed with --overwrite, else it is an error.
  void remove_existing(const std::string& dest) {
    struct stat st {};
    if (::lstat(dest.c_str(), &st) != 0) return;
    if (!options_.overwrite) fail(ErrorCategory::exists, "{} exists (pass --overwrite to replace it)", dest);
    if (S_ISDIR(st.st_mode)) fail(ErrorCategory::exists, "{} is a directory; not replacing it with a file", dest);
    if (::unlink(dest.c_str()) != 0) throw_errno(errno, "remove " + dest);
  }

  void restore_node(const Node& n, const std::string& path, Selection& sel) {
    const std::string dest = target_ + path;
    Node meta = n;  // what apply_metadata needs: no chunk lists
    meta.chunks.clear();
    meta.chunk_lists.clear();
    meta.subtree.clear();
    switch (n.type) {
      case NodeType::dir: {
        struct stat st {};
        if (::lstat(dest.c_str(), &st) == 0) {
          if (!S_ISDIR(st.st_mode)) fail(ErrorCategory::exists, "{} exists and is not a directory", dest);
          sweep(dest);
        } else if (::mkdir(dest.c_str(), 0700) != 0) {
          throw_errno(errno, "create directory " + dest);
        }
        ++stats_.dirs;
        dirs_.emplace_back(dest, std::move(meta));
        Tree sub = load_tree(repo_, n.subtree, "snapshot: " + path);
        restore_tree(sub, path, sel);
        return;
      }
      case NodeType::file: restore_file(n, path, dest, std::move(meta)); return;
      case NodeType::symlink:
        remove_existing(dest);
        if (::symlink(n.target.c_str(), dest.c_str()) != 0) throw_errno(errno, "create symlink " + dest);
        ++stats_.links;
        break;
      case NodeType::fifo:
        remove_existing(dest);
        if (::mkfifo(dest.c_str(), 0600) != 0) throw_errno(errno, "create FIFO " + dest);
        ++stats_.other;
        break;
      case NodeType::chardev:
      case NodeType::blockdev:
        remove_existing(dest);
        if (::mknod(dest.c_str(), (n.type == NodeType::chardev ? S_IFCHR : S_IFBLK) | 0600,
                    static_cast<dev_t>(n.rdev)) != 0) {
          warning(fmt::format("cannot create device node {}: {}", dest, std::strerror(errno)));
          return;
        }
        ++stats_.other;
        break;
      case NodeType::socket: return;  // a socket belongs to a running program: nothing to restore
    }
    entries_.emplace_back(dest, std::move(meta));
  }

  void restore_file(const Node& n, const std::string& path, const std::string& dest, Node meta) {
    struct stat st {};
    if (::lstat(dest.c_str(), &st) == 0) {
      if (!options_.overwrite) fail(ErrorCategory::exists, "{} exists (pass --overwrite to replace it)", dest);
      if (S_ISDIR(st.st_mode)) fail(ErrorCategory::exists, "{} is a directory; not replacing it with a file", dest);
    }
    ++stats_.files;
    if (n.nlink > 1) {
      auto [it, first] = links_.try_emplace({n.dev, n.ino}, dest);
      if (!first) {
        // Made once the first name is complete: it shares the inode, content and metadata.
        pending_links_.emplace_back(dest, it->second);
        return;
      }
    }
    const std::string what = "snapshot: " + path;
    std::vector<ChunkRef> chunks = load_file_chunks(repo_, n, what);
    auto p = std::make_shared<PendingRestore>();
    p->dest = dest;
    const fs::path d(dest);
    p->temp = (d.parent_path() / make_temp_name(d.filename().string(), ++temp_counter_)).string();
    int fd = ::open(p->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno(errno, "create " + p->temp);
    {
      std::lock_guard lock(pending_mutex_);
      unfinished_.emplace(p.get(), p);
    }
    p->file = File::adopt(UniqueFd(fd), dest, true);
    p->file.truncate(n.size);  // holes where chunks are holes or all zero
    size_t data_chunks = 0;
    for (const ChunkRef& c : chunks) data_chunks += !c.is_hole();
    p->remaining = data_chunks;
    entries_.emplace_back(dest, std::move(meta));
    if (data_chunks == 0) {
      finish_file(*p);
      return;
    }
    uint64_t offset = 0;
    for (const ChunkRef& c : chunks) {
      if (c.is_hole()) {
        offset += c.length;
        continue;
      }
      pipeline_.submit([this, p, c, offset, what] {
        thread_local std::vector<uint8_t> frame, scratch;
        std::span<const uint8_t> plain;
        try {
          plain = repo_.read_blob(c.id, frame, scratch, what);
          if (plain.size() != c.length)
            fail(ErrorCategory::corrupt, "{}: chunk {} has {} bytes, expected {}", what, c.id.short_hex(),
                 plain.size(), c.length);
        } catch (const Error& e) {
          // Damage in the repository spoils this file only: note it, go on with the rest.
          if (e.category() != ErrorCategory::corrupt) throw;
          p->damaged = true;
          std::lock_guard lock(failed_mutex_);
          failed_.try_emplace(p->dest, e.what());
        }
        if (!p->damaged) {
          write_nonzero_blocks(p->file, offset, plain);
          bytes_ += plain.size();
          progress_.add(plain.size());
        }
        if (--p->remaining == 0) finish_file(*p);
      });
      offset += c.length;
    }
  }

  // The last chunk is in: the file gets its name (or, damaged, goes).
  void finish_file(PendingRestore& p) {
    p.file = File();
    if (p.damaged) {
      ::unlink(p.temp.c_str());
    } else {
      const unsigned flags = options_.overwrite ? 0 : RENAME_NOREPLACE;
      if (::renameat2(AT_FDCWD, p.temp.c_str(), AT_FDCWD, p.dest.c_str(), flags) != 0) {
        int err = errno;
        ::unlink(p.temp.c_str());
        throw_errno(err, "rename " + p.temp + " to " + p.dest);
      }
      ++finished_files_;
    }
    std::lock_guard lock(pending_mutex_);
    unfinished_.erase(&p);  // may destroy p: nothing touches it after this
  }

  void remove_unfinished() noexcept {
    std::lock_guard lock(pending_mutex_);
    for (auto& [raw, p] : unfinished_) {
      p->file = File();
      ::unlink(p->temp.c_str());
    }
    unfinished_.clear();
  }

  // Further names of hard-linked files, once the first name is complete.
  void make_links() {
    for (const auto& [dest, first] : pending_links_) {
      if (failed_.count(first)) {
        failed_.try_emplace(dest, "hard link to " + first + ", which could not be restored");
        continue;
      }
      remove_existing(dest);
      if (::link(first.c_str(), dest.c_str()) != 0) throw_errno(errno, "link " + dest + " to " + first);
    }
  }

  void warning(const std::string& text) {
    warn("{}", text);
    ++stats_.warnings;
  }

  void apply_metadata(const std::string& dest, const Node& n) {
    const bool link = n.type == NodeType::symlink;
    if (is_root_ || (n.uid == ::geteuid() && n.gid == ::getegid())) {
      if (::lchown(dest.c_str(), n.uid, n.gid) != 0)
        warning(fmt::format("cannot set owner of {}: {}", dest, std::strerror(errno)));
    }
    // After chown, which clears set-id bits.
    if (!link && ::chmod(dest.c_str(), n.mode & 07777) != 0)
      warning(fmt::format("cannot set mode of {}: {}", dest, std::strerror(errno)));
    for (const auto& [name, value] : n.xattrs) {
      if (::lsetxattr(dest.c_str(), name.c_str(), value.data(), value.size(), 0) != 0)
        warning(fmt::format("cannot set extended attribute {} of {}: {}", name, dest, std::strerror(errno)));
    }
    struct timespec times[2] = {to_timespec(n.atime_ns), to_timespec(n.mtime_ns)};
    if (::utimensat(AT_FDCWD, dest.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
      warning(fmt::format("cannot set times of {}: {}", dest, std::strerror(errno)));
  }

  Repository& repo_;
  std::string target_;
  const FileRestoreOptions& options_;
  std::vector<std::pair<std::string, Node>> entries_;
  std::vector<std::pair<std::string, Node>> dirs_;
  std::map<std::pair<uint64_t, uint64_t>, std::string> links_;
  std::vector<std::pair<std::string, std::string>> pending_links_;  // name -> first name
  std::mutex pending_mutex_;
  std::unordered_map<PendingRestore*, std::shared_ptr<PendingRestore>> unfinished_;
  uint64_t temp_counter_ = 0;
  std::atomic<uint64_t> finished_files_{0};
  std::mutex failed_mutex_;
  std::map<std::string, std::string> failed_;  // restored path -> why its content is missing
  FileRestoreStats stats_;
  std::atomic<uint64_t> bytes_{0};
  Progress progress_;
  bool is_root_;
  Pipeline pipeline_;  // last: drained before what its jobs use goes away
};

}  // namespace

FileRestoreStats restore_files(Repository& repo, const Snapshot& snapshot, const std::string& target,
                               const FileRestoreOptions& options) {
  std::string root = fs::absolute(target).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root == "/") root.clear();
  FileRestorer restorer(repo, root.empty() ? "" : root, options);
  return restorer.run(snapshot);
}

}  // namespace arche::backup
