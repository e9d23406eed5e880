#define FUSE_USE_VERSION 31
#include "backup/mount.h"

#include <fuse.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "backup/browse.h"
#include "core/error.h"
#include "core/log.h"
#include "volume/volume_path.h"

namespace arche::backup {

namespace {

// What a path of the mount leads to.
struct MountNode {
  enum Kind { root, snapshot_dir, raw_image, image_dir, vg_dir, entry } kind = root;
  size_t snapshot = 0;
  uint32_t image = 0;
  std::string vg;
  volume::Filesystem* fs = nullptr;
  std::string path;  // entry: inside fs
};

int errno_of(const Error& e) {
  switch (e.category()) {
    case ErrorCategory::not_found: return ENOENT;
    case ErrorCategory::usage: return ENOTDIR;
    case ErrorCategory::interrupted: return EINTR;
    default: return EIO;
  }
}

class MountedRepository {
 public:
  MountedRepository(Repository& repo, std::vector<std::unique_ptr<volume::Sandbox>> sandboxes)
      : repo_(repo), sandboxes_(std::move(sandboxes)) {
    session_ = open_browse_session(repo, "backup mount");
    std::map<std::string, int> seen;
    for (const Snapshot& s : session_.snapshots) ++seen[s.name];
    for (size_t i = 0; i < session_.snapshots.size(); ++i) {
      const Snapshot& s = session_.snapshots[i];
      std::string name = seen[s.name] > 1 ? s.name + "-" + s.short_id() : s.name;
      for (char& c : name)
        if (c == '/') c = '_';  // a name is one path component here
      if (name == "." || name == ".." || !dirs_.emplace(name, i).second) dirs_.emplace(s.id, i);
    }
  }

  // FUSE runs single-threaded (fuse_loop); the lock keeps the callbacks one at a
  // time should that change (the sandboxed trees answer one request at a time).
  std::mutex mutex;

  MountNode resolve(const std::string& path) {
    MountNode n;
    if (path == "/") return n;
    std::string rest = path.substr(1);
    const size_t slash = rest.find('/');
    auto it = dirs_.find(rest.substr(0, slash));
    if (it == dirs_.end()) fail(ErrorCategory::not_found, "no snapshot {}", rest.substr(0, slash));
    n.snapshot = it->second;
    n.kind = MountNode::snapshot_dir;
    if (slash == std::string::npos) return n;
    rest = rest.substr(slash + 1);
    const Snapshot& s = session_.snapshots[n.snapshot];
    const size_t slash2 = rest.find('/');
    const std::string first = rest.substr(0, slash2);
    const std::string inner = slash2 == std::string::npos ? "" : rest.substr(slash2 + 1);
    if (first == "files" && !s.tree.empty()) {
      n.kind = MountNode::entry;
      n.fs = browser(n.snapshot).files();
      n.path = volume::normalize_path(inner);
      return n;
    }
    for (uint32_t i = 0; i < s.images.size(); ++i) {
      n.image = i;
      if (first == s.images[i].name && inner.empty() && slash2 == std::string::npos) {
        n.kind = MountNode::raw_image;
        return n;
      }
      if (first != s.images[i].name + ".d") continue;
      volume::Tree& tree = browser(n.snapshot).images();
      const volume::VolumeInfo* whole = whole_disk(tree, i);
      if (inner.empty() && !whole) {
        n.kind = MountNode::image_dir;
        return n;
      }
      for (const volume::VolumeInfo& v : tree.volumes())
        if (v.kind == volume::VolumeKind::volume_group && v.name == inner) {
          n.kind = MountNode::vg_dir;
          n.vg = inner;
          return n;
        }
      volume::Location loc = volume::resolve(tree, i, whole ? "/" + inner : inner);
      n.kind = MountNode::entry;
      n.fs = &tree.filesystem(loc.volume);
      n.path = loc.path;
      return n;
    }
    fail(ErrorCategory::not_found, "snapshot {} has no {}", s.name, first);
  }

  int getattr(const std::string& path, struct stat* st) {
    std::memset(st, 0, sizeof *st);
    MountNode n = resolve(path);
    const int64_t t = n.kind == MountNode::root ? 0 : session_.snapshots[n.snapshot].time_ns;
    st->st_mtim = st->st_ctim = st->st_atim = {static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
    st->st_nlink = 1;
    switch (n.kind) {
      case MountNode::root:
      case MountNode::snapshot_dir:
      case MountNode::image_dir:
      case MountNode::vg_dir:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
      case MountNode::raw_image:
        st->st_mode = S_IFREG | 0444;
        st->st_size = static_cast<off_t>(session_.snapshots[n.snapshot].images[n.image].size);
        st->st_blocks = (st->st_size + 511) / 512;
        return 0;
      case MountNode::entry: break;
    }
    const volume::FileStat f = n.fs->stat(n.path);
    static const std::map<volume::FileType, mode_t> kType = {
        {volume::FileType::regular, S_IFREG},     {volume::FileType::directory, S_IFDIR},
        {volume::FileType::symlink, S_IFLNK},     {volume::FileType::block_device, S_IFBLK},
        {volume::FileType::char_device, S_IFCHR}, {volume::FileType::fifo, S_IFIFO},
        {volume::FileType::socket, S_IFSOCK},     {volume::FileType::unknown, S_IFREG}};
    // Read-only: write bits are dropped, the rest is what the guest had.
    st->st_mode = kType.at(f.type) | (f.mode & 07555);
    st->st_uid = f.uid;
    st->st_gid = f.gid;
    st->st_nlink = f.nlink;
    st->st_size = static_cast<off_t>(f.size);
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = {static_cast<time_t>(f.atime_ns / 1000000000), static_cast<long>(f.atime_ns % 1000000000)};
    st->st_mtim = {static_cast<time_t>(f.mtime_ns / 1000000000), static_cast<long>(f.mtime_ns % 1000000000)};
    st->st_ctim = {static_cast<time_t>(f.ctime_ns / 1000000000), static_cast<long>(f.ctime_ns % 1000000000)};
    return 0;
  }

  std::vector<std::string> readdir(const std::string& path) {
    MountNode n = resolve(path);
    std::vector<std::string> names;
    switch (n.kind) {
      case MountNode::root:
        for (const auto& [name, index] : dirs_) names.push_back(name);
        break;
      case MountNode::snapshot_dir: {
        const Snapshot& s = session_.snapshots[n.snapshot];
        for (const ImageRecord& i : s.images) {
          names.push_back(i.name);
          names.push_back(i.name + ".d");
        }
        if (!s.tree.empty()) names.push_back("files");
        break;
      }
      case MountNode::image_dir: {
        std::set<std::string> vgs;
        volume::Tree& tree = browser(n.snapshot).images();
        for (const volume::VolumeInfo& v : tree.volumes()) {
          if (v.kind == volume::VolumeKind::partition && v.disk == n.image && v.browsable) names.push_back(v.name);
          if (v.kind == volume::VolumeKind::volume_group && v.disk == n.image) vgs.insert(v.name);
        }
        names.insert(names.end(), vgs.begin(), vgs.end());
        break;
      }
      case MountNode::vg_dir:
        for (const volume::VolumeInfo& v : browser(n.snapshot).images().volumes())
          if (v.kind == volume::VolumeKind::logical_volume && v.browsable && v.name.rfind(n.vg + "/", 0) == 0)
            names.push_back(v.name.substr(n.vg.size() + 1));
        break;
      case MountNode::raw_image: fail(ErrorCategory::usage, "{} is not a directory", path);
      case MountNode::entry:
        for (const volume::DirEntry& e : n.fs->list(n.path)) names.push_back(e.name);
        break;
    }
    return names;
  }

  size_t read(const std::string& path, uint64_t offset, std::span<uint8_t> out) {
    MountNode n = resolve(path);
    if (n.kind == MountNode::raw_image) {
      SnapshotImageDevice& dev = browser(n.snapshot).device(n.image);
      if (offset >= dev.size()) return 0;
      out = out.first(static_cast<size_t>(std::min<uint64_t>(out.size(), dev.size() - offset)));
      dev.read(offset, out);
      return out.size();
    }
    if (n.kind != MountNode::entry) fail(ErrorCategory::usage, "{} is a directory", path);
    size_t done = 0;
    while (done < out.size()) {
      const size_t got = n.fs->read(n.path, offset + done, out.subspan(done));
      if (got == 0) break;
      done += got;
    }
    return done;
  }

  std::string readlink(const std::string& path) {
    MountNode n = resolve(path);
    if (n.kind != MountNode::entry) fail(ErrorCategory::usage, "{} is not a symbolic link", path);
    return n.fs->readlink(n.path);
  }

  bool is_file(const std::string& path) {
    MountNode n = resolve(path);
    return n.kind == MountNode::raw_image ||
           (n.kind == MountNode::entry && n.fs->stat(n.path).type == volume::FileType::regular);
  }

 private:
  static const volume::VolumeInfo* whole_disk(const volume::Tree& tree, uint32_t disk) {
    for (const volume::VolumeInfo& v : tree.volumes())
      if (v.kind == volume::VolumeKind::disk && v.disk == disk && v.browsable) return &v;
    return nullptr;
  }

  // The browser of snapshot i, made on first use; it takes a sandbox if one is left.
  SnapshotBrowser& browser(size_t i) {
    auto it = browsers_.find(i);
    if (it != browsers_.end()) return *it->second;
    const Snapshot& s = session_.snapshots[i];
    std::unique_ptr<volume::Sandbox> sandbox;
    if (!s.images.empty()) {
      if (!sandboxes_.empty()) {
        sandbox = std::move(sandboxes_.back());
        sandboxes_.pop_back();
      } else {
        warn("backup mount: the images of snapshot {} cannot be looked into: every volume sandbox of this mount "
                  "is in use (mount again to look into other snapshots); its raw images and files still read",
                  s.name);
      }
    }
    auto b = std::make_unique<SnapshotBrowser>(repo_, s, std::move(sandbox));
    return *browsers_.emplace(i, std::move(b)).first->second;
  }

  Repository& repo_;
  std::vector<std::unique_ptr<volume::Sandbox>> sandboxes_;
  BrowseSession session_;
  std::map<std::string, size_t> dirs_;  // directory name -> index into session_.snapshots
  std::map<size_t, std::unique_ptr<SnapshotBrowser>> browsers_;
};

MountedRepository& mounted() { return *static_cast<MountedRepository*>(fuse_get_context()->private_data); }

// Runs `f`, turning arche errors into -errno (and a warning line for I/O errors:
// a damaged chunk or a crashed parser should not be silent).
template <class F>
int guarded(const char* path, F&& f) {
  try {
    std::lock_guard lock(mounted().mutex);
    return f();
  } catch (const Error& e) {
    const int err = errno_of(e);
    if (err == EIO) warn("backup mount: {}: {}", path, e.what());
    return -err;
  } catch (const std::exception& e) {
    warn("backup mount: {}: {}", path, e.what());
    return -EIO;
  }
}

int op_getattr(const char* path, struct stat* st, fuse_file_info*) {
  return guarded(path, [&] { return mounted().getattr(path, st); });
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*, fuse_readdir_flags) {
  return guarded(path, [&] {
    fill(buf, ".", nullptr, 0, fuse_fill_dir_flags{});
    fill(buf, "..", nullptr, 0, fuse_fill_dir_flags{});
    for (const std::string& name : mounted().readdir(path)) fill(buf, name.c_str(), nullptr, 0, fuse_fill_dir_flags{});
    return 0;
  });
}

int op_open(const char* path, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  return guarded(path, [&] { return mounted().is_file(path) ? 0 : -EISDIR; });
}

int op_read(const char* path, char* buf, size_t size, off_t offset, fuse_file_info*) {
  return guarded(path, [&] {
    return static_cast<int>(
        mounted().read(path, static_cast<uint64_t>(offset), {reinterpret_cast<uint8_t*>(buf), size}));
  });
}

int op_readlink(const char* path, char* buf, size_t size) {
  return guarded(path, [&] {
    const std::string target = mounted().readlink(path);
    if (size == 0) return -EINVAL;
    const size_t n = std::min(target.size(), size - 1);
    std::memcpy(buf, target.data(), n);
    buf[n] = 0;
    return 0;
  });
}

void* op_init(fuse_conn_info*, fuse_config* cfg) {
  cfg->kernel_cache = 1;  // nothing changes under a mount of immutable snapshots
  cfg->entry_timeout = cfg->attr_timeout = 3600;
  return fuse_get_context()->private_data;
}

}  // namespace

void mount_repository(Repository& repo, std::vector<std::unique_ptr<volume::Sandbox>> sandboxes,
                      const MountOptions& options) {
  MountedRepository state(repo, std::move(sandboxes));
  fuse_operations ops{};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.read = op_read;
  ops.readlink = op_readlink;

  const std::string fsname = "fsname=arche:" + (options.fsname.empty() ? repo.location() : options.fsname);
  std::string opts = "ro,default_permissions,subtype=arche," + fsname;
  for (char& c : opts)
    if (c == ' ') c = '_';  // fuse takes commas and spaces as separators
  std::vector<std::string> argv_text{"arche", "-o", opts};
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse* f = fuse_new(&args, &ops, sizeof ops, &state);
  if (!f) fail(ErrorCategory::internal, "backup mount: fuse_new failed");
  if (fuse_mount(f, options.mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    fail(ErrorCategory::io, "cannot mount on {} (is it a directory, is /dev/fuse there, is it mounted already?)",
         options.mountpoint);
  }
  // SIGINT/SIGTERM/SIGHUP end the loop, which then unmounts. libfuse installs its
  // handlers only over the default ones, so arche's (core/interrupt.h) go first.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
  fuse_session* se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    fail(ErrorCategory::internal, "backup mount: cannot set the signal handlers");
  }
  if (options.on_mounted) options.on_mounted();
  const int rc = fuse_loop(f);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);
  if (rc < 0) fail(ErrorCategory::io, "backup mount on {}: {}", options.mountpoint, std::strerror(-rc));
}

}  // namespace arche::backup
