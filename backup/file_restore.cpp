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

#include "backup/pipeline.h"
#include "backup/tree_store.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"

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
    if (!target_.empty()) fs::create_directories(target_);
    Tree root = load_tree(repo_, snapshot.tree, "snapshot " + snapshot.name + ": /");
    try {
      restore_tree(root, "", selection);
      pipeline_.wait();
    } catch (...) {
      pipeline_.drain();
      throw;
    }
    report_missing(selection, "");
    // Files whose chunks are damaged are removed, not left looking restored.
    for (const auto& [path, error] : failed_) {
      warn("{} not restored: {}", path, error);
      ::unlink(path.c_str());
    }
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
  void report_missing(const Selection& s, const std::string& path) {
    if (s.whole && !s.found && !path.empty())
      fail(ErrorCategory::not_found, "{} is not in the snapshot", path);
    for (const auto& [name, child] : s.children) report_missing(child, path + "/" + name);
  }

  void restore_tree(const Tree& tree, const std::string& rel, Selection& selection) {
    for (const Node& n : tree.nodes) {
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
    remove_existing(dest);
    if (n.nlink > 1) {
      auto [it, first] = links_.try_emplace({n.dev, n.ino}, dest);
      if (!first) {
        if (::link(it->second.c_str(), dest.c_str()) != 0) throw_errno(errno, "link " + dest + " to " + it->second);
        ++stats_.files;
        return;  // shares the inode: content and metadata come with the first name
      }
    }
    const std::string what = "snapshot: " + path;
    std::vector<ChunkRef> chunks = load_file_chunks(repo_, n, what);
    int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno(errno, "create " + dest);
    auto file = std::make_shared<File>(File::adopt(UniqueFd(fd), dest, true));
    file->truncate(n.size);  // holes where chunks are all zero
    uint64_t offset = 0;
    for (const ChunkRef& c : chunks) {
      pipeline_.submit([this, file, c, offset, what, dest] {
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
          std::lock_guard lock(failed_mutex_);
          failed_.try_emplace(dest, e.what());
          return;
        }
        write_nonzero_blocks(*file, offset, plain);
        bytes_ += plain.size();
        progress_.add(plain.size());
      });
      offset += c.length;
    }
    ++stats_.files;
    entries_.emplace_back(dest, std::move(meta));
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
