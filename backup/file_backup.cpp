#include "backup/file_backup.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <unordered_map>

#include "backup/fastcdc.h"
#include "backup/file_chunker.h"
#include "backup/tree_store.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/progress.h"

namespace fs = boost::filesystem;

namespace arche::backup {

namespace {

// Files up to this size are read and chunked by one worker; larger ones are read by
// the walking thread and their chunks spread over the workers.
constexpr uint64_t kSmallFile = 16u << 20;

int64_t ns_of(const struct timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; }

NodeType type_of(mode_t mode) {
  if (S_ISREG(mode)) return NodeType::file;
  if (S_ISDIR(mode)) return NodeType::dir;
  if (S_ISLNK(mode)) return NodeType::symlink;
  if (S_ISFIFO(mode)) return NodeType::fifo;
  if (S_ISCHR(mode)) return NodeType::chardev;
  if (S_ISBLK(mode)) return NodeType::blockdev;
  return NodeType::socket;
}

std::vector<std::pair<std::string, std::string>> read_xattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<char> names(4096);
  ssize_t n;
  while ((n = ::llistxattr(path.c_str(), names.data(), names.size())) < 0 && errno == ERANGE)
    names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP || errno == ENOSYS) return out;
    throw_errno(errno, "list extended attributes of " + path);
  }
  for (ssize_t pos = 0; pos < n;) {
    std::string name(names.data() + pos);
    pos += static_cast<ssize_t>(name.size()) + 1;
    std::vector<char> value(256);
    ssize_t v;
    while ((v = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size())) < 0 && errno == ERANGE)
      value.resize(value.size() * 4);
    if (v < 0) {
      if (errno == ENODATA) continue;  // removed meanwhile
      throw_errno(errno, "read extended attribute " + name + " of " + path);
    }
    out.emplace_back(std::move(name), std::string(value.data(), static_cast<size_t>(v)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

File open_for_reading(const std::string& path) {
  try {
    return File::open(path, OpenMode::read_only, O_NOFOLLOW | O_NOATIME);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::permission) throw;
    return File::open(path, OpenMode::read_only, O_NOFOLLOW);  // O_NOATIME needs ownership
  }
}

class NameCache {
 public:
  std::string user(uid_t uid) {
    auto it = users_.find(uid);
    if (it != users_.end()) return it->second;
    struct passwd pw {}, *result = nullptr;
    std::vector<char> buf(16384);
    std::string name;
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == 0 && result) name = pw.pw_name;
    return users_[uid] = name;
  }
  std::string group(gid_t gid) {
    auto it = groups_.find(gid);
    if (it != groups_.end()) return it->second;
    struct group gr {}, *result = nullptr;
    std::vector<char> buf(16384);
    std::string name;
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &result) == 0 && result) name = gr.gr_name;
    return groups_[gid] = name;
  }

 private:
  std::unordered_map<uid_t, std::string> users_;
  std::unordered_map<gid_t, std::string> groups_;
};

// The backed-up paths as a tree of names below "/".
struct VirtualDir {
  std::map<std::string, VirtualDir> children;
  bool target = false;  // this path was given: back it up whole
};

const Node* find_node(const Tree* tree, const std::string& name) {
  if (!tree) return nullptr;
  auto it = std::lower_bound(tree->nodes.begin(), tree->nodes.end(), name,
                             [](const Node& n, const std::string& k) { return n.name < k; });
  return it != tree->nodes.end() && it->name == name ? &*it : nullptr;
}

class FileBackup {
 public:
  FileBackup(ChunkStore& store, Pipeline& pipeline, const FileBackupOptions& options, SnapshotStats& stats)
      : store_(store),
        repo_(store.repository()),
        pipeline_(pipeline),
        options_(options),
        stats_(stats),
        cdc_({repo_.settings().cdc_min, repo_.settings().cdc_avg, repo_.settings().cdc_max},
             repo_.keys().chunker_seed()),
        progress_("backup files", 0) {
    struct stat st {};
    const std::string local = repo_.store().local_path();
    if (!local.empty() && ::stat(local.c_str(), &st) == 0) repo_id_ = {st.st_dev, st.st_ino};
  }

  std::vector<Id> run(const std::vector<std::string>& paths, const Snapshot* parent) {
    std::unique_ptr<Tree> previous_root;
    if (parent && !parent->tree.empty()) {
      try {
        previous_root = std::make_unique<Tree>(load_tree(repo_, parent->tree, "parent snapshot root"));
      } catch (const Error& e) {
        warn("parent snapshot {} is unreadable, reading every file: {}", parent->name, e.what());
      }
    }
    try {
      if (std::find(paths.begin(), paths.end(), "/") != paths.end()) {
        struct stat st {};
        if (::lstat("/", &st) != 0) throw_errno(errno, "stat /");
        walk_directory("/", st, nullptr, previous_root.get());
      } else {
        VirtualDir root;
        for (const std::string& p : paths) {
          VirtualDir* v = &root;
          for (const fs::path& part : fs::path(p).relative_path()) {
            if (v->target) break;
            v = &v->children[part.string()];
          }
          v->target = true;
          v->children.clear();
        }
        walk_virtual(root, "", nullptr, previous_root.get());
      }
      pipeline_.wait();
    } catch (...) {
      pipeline_.drain();
      throw;
    }
    encode_ready();
    progress_.finish();
    if (!queue_.empty()) fail(ErrorCategory::internal, "file backup: {} directories left unencoded", queue_.size());
    stats_.bytes_read += bytes_read_;
    return root_pieces_;
  }

 private:
  // One file's content while its chunks are being stored.
  struct Content {
    std::deque<ChunkRef> chunks;  // references stay valid while it grows
    uint64_t size = 0;            // bytes actually read
    std::string error;            // reading failed: the entry is left out
  };
  // A directory that has been walked but not yet encoded.
  struct DirState {
    Tree tree;
    std::vector<std::unique_ptr<Content>> contents;  // by node index; null: none pending
    std::atomic<int> pending{0};
    Node* slot = nullptr;  // the parent's node that receives the subtree; null: the root
    std::string path;
  };

  void note_unreadable(const std::string& path, const std::string& why) {
    warn("skipping {}: {}", path, why);
    ++stats_.unreadable;
  }

  bool excluded(const std::string& path, const std::string& name) const {
    for (const std::string& pattern : options_.excludes)
      if (::fnmatch(pattern.c_str(), path.c_str(), 0) == 0 || ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0)
        return true;
    return false;
  }

  Node make_node(const std::string& path, const std::string& name, const struct stat& st) {
    Node n;
    n.name = name;
    n.type = type_of(st.st_mode);
    n.mode = st.st_mode;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.user = names_.user(st.st_uid);
    n.group = names_.group(st.st_gid);
    n.atime_ns = ns_of(st.st_atim);
    n.mtime_ns = ns_of(st.st_mtim);
    n.ctime_ns = ns_of(st.st_ctim);
    n.size = n.type == NodeType::file ? static_cast<uint64_t>(st.st_size) : 0;
    n.dev = st.st_dev;
    n.ino = st.st_ino;
    n.nlink = static_cast<uint32_t>(st.st_nlink);
    if (n.type == NodeType::chardev || n.type == NodeType::blockdev) n.rdev = st.st_rdev;
    if (n.type == NodeType::symlink) {
      std::vector<char> buf(static_cast<size_t>(std::max<off_t>(st.st_size, 255)) + 1);
      ssize_t len = ::readlink(path.c_str(), buf.data(), buf.size());
      if (len < 0) throw_errno(errno, "read symlink " + path);
      n.target.assign(buf.data(), static_cast<size_t>(len));
    }
    n.xattrs = read_xattrs(path);
    return n;
  }

  // The root's virtual directories (/home for /home/kunde): metadata of the real ones.
  void walk_virtual(const VirtualDir& v, const std::string& prefix, Node* slot, const Tree* previous) {
    auto state = std::make_unique<DirState>();
    state->slot = slot;
    state->path = prefix.empty() ? "/" : prefix;
    state->tree.nodes.reserve(v.children.size());
    state->contents.resize(v.children.size());
    for (const auto& [name, child] : v.children) {
      const std::string path = prefix + "/" + name;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) throw_errno(errno, "stat " + path);
      const Node* prev = find_node(previous, name);
      if (child.target) {
        visit(*state, path, name, st, prev);
        continue;
      }
      state->tree.nodes.push_back(make_node(path, name, st));
      ++stats_.dirs;
      walk_virtual(child, path, &state->tree.nodes.back(), load_previous_subtree(prev, path));
    }
    finish_directory(std::move(state));
  }

  const Tree* load_previous_subtree(const Node* prev, const std::string& path) {
    if (!prev || prev->type != NodeType::dir) return nullptr;
    try {
      previous_trees_.push_back(std::make_unique<Tree>(load_tree(repo_, prev->subtree, "parent snapshot: " + path)));
      return previous_trees_.back().get();
    } catch (const Error& e) {
      warn("parent snapshot's copy of {} is unreadable, reading it again: {}", path, e.what());
      return nullptr;
    }
  }

  // Adds the entry at `path` to `dir` (recursing into directories).
  void visit(DirState& dir, const std::string& path, const std::string& name, const struct stat& st,
             const Node* prev) {
    Node node;
    try {
      node = make_node(path, name, st);
    } catch (const Error& e) {
      note_unreadable(path, e.what());
      return;
    }
    const size_t index = dir.tree.nodes.size();
    dir.tree.nodes.push_back(std::move(node));
    Node& n = dir.tree.nodes.back();
    switch (n.type) {
      case NodeType::dir: {
        ++stats_.dirs;
        if (repo_id_ == std::pair<uint64_t, uint64_t>(st.st_dev, st.st_ino)) {
          note("not backing up the repository itself ({})", path);
          n.subtree = store_tree(store_, Tree{});
          return;
        }
        if (options_.one_file_system && !root_dev_stack_.empty() && st.st_dev != root_dev_stack_.back()) {
          n.subtree = store_tree(store_, Tree{});  // a mount point: the directory, not its content
          return;
        }
        walk_directory(path, st, &n, load_previous_subtree(prev, path));
        return;
      }
      case NodeType::file: ++stats_.files; break;
      case NodeType::symlink: ++stats_.symlinks; return;
      default: ++stats_.other; return;
    }
    stats_.total_bytes += n.size;
    if (prev && prev->type == NodeType::file && prev->size == n.size && prev->mtime_ns == n.mtime_ns &&
        prev->ctime_ns == n.ctime_ns && prev->ino == n.ino && chunks_present(*prev)) {
      n.chunks = prev->chunks;
      n.chunk_lists = prev->chunk_lists;
      n.chunk_count = prev->chunk_count;
      ++stats_.unchanged_files;
      return;
    }
    auto content = std::make_unique<Content>();
    Content* c = content.get();
    dir.contents[index] = std::move(content);
    if (n.size <= kSmallFile) {
      dir.pending += 1;
      try {
        pipeline_.submit([this, c, path, &dir] {
          read_small_file(path, *c);
          dir.pending -= 1;
        });
      } catch (...) {
        dir.pending -= 1;
        throw;
      }
    } else {
      read_large_file(path, dir, *c);
    }
  }

  // The unchanged file's chunks are all there; the backup relies on them from now on.
  bool chunks_present(const Node& n) {
    ChunkIndex& index = repo_.index();
    for (const ChunkRef& c : n.chunks)
      if (!c.is_hole() && !index.reference(c.id)) return false;
    for (const Id& id : n.chunk_lists)
      if (!index.reference(id)) return false;
    return true;
  }

  // A file that cannot be opened (gone, no permission) is left out of the snapshot
  // with its error, not the end of the backup.
  static bool open_content(const std::string& path, Content& c, File& f) {
    try {
      f = open_for_reading(path);
      return true;
    } catch (const Error& e) {
      c.error = e.what();
      return false;
    }
  }

  void read_small_file(const std::string& path, Content& c) {
    thread_local std::vector<uint8_t> buffer;
    File f;
    if (!open_content(path, c, f)) return;
    // Read errors leave the entry out; store errors (disk full) end the backup.
    std::exception_ptr store_error;
    ReadCount count;
    try {
      count = read_chunks(
          f, cdc_, buffer,
          [&](std::span<const uint8_t> chunk) {
            try {
              c.chunks.push_back({store_.store(BlobKind::data, chunk), static_cast<uint32_t>(chunk.size())});
            } catch (...) {
              store_error = std::current_exception();
              throw;
            }
          },
          [&](uint64_t length) { c.chunks.push_back({Id{}, static_cast<uint32_t>(length)}); });
    } catch (const Error& e) {
      if (store_error || e.category() == ErrorCategory::interrupted) throw;
      c.error = e.what();
      return;
    }
    c.size = count.covered;
    bytes_read_ += count.read;
    progress_.add(count.covered);
  }

  void read_large_file(const std::string& path, DirState& dir, Content& c) {
    File f;
    if (!open_content(path, c, f)) return;
    std::exception_ptr submit_error;
    ReadCount count;
    try {
      count = read_chunks(
          f, cdc_, large_buffer_,
          [&](std::span<const uint8_t> chunk) {
            // A placeholder until its worker stores it (a zero id would read as a hole).
            c.chunks.push_back({Id{}, static_cast<uint32_t>(chunk.size())});
            ChunkRef* ref = &c.chunks.back();
            auto data = std::make_shared<std::vector<uint8_t>>(chunk.begin(), chunk.end());
            dir.pending += 1;
            try {
              pipeline_.submit([this, ref, data, &dir] {
                ref->id = store_.store(BlobKind::data, *data);
                dir.pending -= 1;
              });
            } catch (...) {
              dir.pending -= 1;
              submit_error = std::current_exception();
              throw;
            }
          },
          [&](uint64_t length) { c.chunks.push_back({Id{}, static_cast<uint32_t>(length)}); });
    } catch (const Error& e) {
      if (submit_error || e.category() == ErrorCategory::interrupted) throw;
      c.error = e.what();
      return;
    }
    c.size = count.covered;
    bytes_read_ += count.read;
    progress_.add(count.covered);
  }

  void walk_directory(const std::string& path, const struct stat& st, Node* slot, const Tree* previous) {
    auto state = std::make_unique<DirState>();
    state->slot = slot;
    state->path = path;
    root_dev_stack_.push_back(root_dev_stack_.empty() ? st.st_dev : root_dev_stack_.back());
    std::vector<std::string> names;
    {
      DIR* d = ::opendir(path.c_str());
      if (!d) {
        int err = errno;
        root_dev_stack_.pop_back();
        note_unreadable(path, std::strerror(err));
        if (!slot) throw_errno(err, "open directory " + path);
        slot->subtree = store_tree(store_, Tree{});  // an empty tree keeps the snapshot consistent
        return;
      }
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        names.push_back(std::move(name));
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    state->tree.nodes.reserve(names.size());
    state->contents.resize(names.size());
    const std::string prefix = path == "/" ? "" : path;
    for (const std::string& name : names) {
      const std::string child = prefix + "/" + name;
      if (excluded(child, name)) continue;
      struct stat cst {};
      if (::lstat(child.c_str(), &cst) != 0) {
        if (errno != ENOENT) note_unreadable(child, std::strerror(errno));  // vanished: nothing to say
        continue;
      }
      visit(*state, child, name, cst, find_node(previous, name));
    }
    root_dev_stack_.pop_back();
    finish_directory(std::move(state));
  }

  void finish_directory(std::unique_ptr<DirState> state) {
    queue_.push_back(std::move(state));
    encode_ready();
  }

  // Encodes walked directories, in the order the walk finished them (children before
  // parents), as soon as their files are stored.
  void encode_ready() {
    while (!queue_.empty() && queue_.front()->pending.load() == 0) {
      DirState& d = *queue_.front();
      Tree tree;
      tree.nodes.reserve(d.tree.nodes.size());
      for (size_t i = 0; i < d.tree.nodes.size(); ++i) {
        Node& n = d.tree.nodes[i];
        if (i < d.contents.size() && d.contents[i]) {
          Content& c = *d.contents[i];
          if (!c.error.empty()) {
            note_unreadable(d.path + "/" + n.name, c.error);
            continue;
          }
          if (c.size != n.size) {
            warn("{} changed size while it was read ({} -> {} bytes)", d.path + "/" + n.name, n.size, c.size);
            stats_.total_bytes += c.size - n.size;
            n.size = c.size;
          }
          set_file_chunks(store_, n, std::vector<ChunkRef>(c.chunks.begin(), c.chunks.end()));
        }
        tree.nodes.push_back(std::move(n));
      }
      std::vector<Id> pieces = store_tree(store_, tree);
      if (d.slot) d.slot->subtree = std::move(pieces);
      else root_pieces_ = std::move(pieces);
      queue_.pop_front();
    }
  }

  ChunkStore& store_;
  Repository& repo_;
  Pipeline& pipeline_;
  const FileBackupOptions& options_;
  SnapshotStats& stats_;
  FastCdc cdc_;
  Progress progress_;
  NameCache names_;
  std::pair<uint64_t, uint64_t> repo_id_{~0ull, ~0ull};
  std::vector<dev_t> root_dev_stack_;
  std::vector<uint8_t> large_buffer_;
  std::deque<std::unique_ptr<DirState>> queue_;
  std::vector<std::unique_ptr<Tree>> previous_trees_;
  std::atomic<uint64_t> bytes_read_{0};
  std::vector<Id> root_pieces_;
};

}  // namespace

std::vector<std::string> normalize_backup_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    if (p.empty()) fail(ErrorCategory::usage, "empty path");
    std::string abs = fs::absolute(p).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    if (abs.size() > 1 && abs.substr(abs.size() - 2) == "/.") abs.resize(abs.size() - 2);
    struct stat st {};
    if (::lstat(abs.c_str(), &st) != 0) throw_errno(errno, "backup path " + p);
    out.push_back(abs);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<Id> backup_files(ChunkStore& store, Pipeline& pipeline, const std::vector<std::string>& paths,
                             const Snapshot* parent, const FileBackupOptions& options, SnapshotStats& stats) {
  FileBackup backup(store, pipeline, options, stats);
  return backup.run(paths, parent);
}

}  // namespace arche::backup
