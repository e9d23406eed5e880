#include "backup/store_local.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <functional>

#include "backup/temp_files.h"
#include "core/error.h"
#include "core/file.h"

namespace fs = boost::filesystem;

namespace arche::backup {

namespace {

constexpr const char* kLayoutDirs[] = {"data", "index", "snapshots", "locks", "keys"};
// Start writeback every few MB, so the fsync at the end of a pack waits for little.
constexpr uint64_t kWritebackStep = 8u << 20;

void make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw_errno(errno, "create directory " + path);
}

// mkdir -p of `dir` below the existing `root`.
void make_parents(const std::string& root, const std::string& dir) {
  if (dir.size() <= root.size()) return;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return;
  make_parents(root, fs::path(dir).parent_path().string());
  make_directory(dir);
}

File create_temp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno(errno, "create " + path);
  ::fchmod(fd, 0600);  // whatever the umask
  return File::adopt(UniqueFd(fd), path, true);
}

// Calls `visit(dir, name, stat)` for every regular file below `dir`.
void walk(const std::string& dir, const std::function<void(const std::string&, const std::string&, const struct stat&)>& visit) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    throw_errno(errno, "list " + dir);
  }
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // removed meanwhile
    if (S_ISDIR(st.st_mode)) subdirs.push_back(dir + "/" + name);
    else if (S_ISREG(st.st_mode)) visit(dir, name, st);
  }
  ::closedir(d);
  for (const std::string& s : subdirs) walk(s, visit);
}

class LocalReader final : public ObjectReader {
 public:
  explicit LocalReader(File file) : file_(std::move(file)), size_(file_.size()) {}
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, std::span<uint8_t> out) override { file_.read_exact(offset, out); }

 private:
  File file_;
  uint64_t size_;
};

class LocalWriter final : public ObjectWriter {
 public:
  LocalWriter(LocalStore& store, std::string path, WriteMode mode)
      : store_(store), path_(std::move(path)), mode_(mode), temp_(store.temp_path_for(path_)), file_(create_temp(temp_)) {}
  ~LocalWriter() override {
    if (!committed_) ::unlink(temp_.c_str());
  }
  void append(std::span<const uint8_t> data) override {
    file_.write_all(size_, data);
    size_ += data.size();
    if (size_ - synced_to_ >= kWritebackStep) {
      ::sync_file_range(file_.fd(), static_cast<off_t>(synced_to_), static_cast<off_t>(size_ - synced_to_),
                        SYNC_FILE_RANGE_WRITE);
      synced_to_ = size_;
    }
  }
  uint64_t bytes_written() const override { return size_; }
  void commit() override {
    file_.sync_data();
    file_ = File();
    store_.publish(temp_, path_, mode_);
    committed_ = true;
  }

 private:
  LocalStore& store_;
  std::string path_;
  WriteMode mode_;
  std::string temp_;
  File file_;
  uint64_t size_ = 0, synced_to_ = 0;
  bool committed_ = false;
};

}  // namespace

LocalStore::LocalStore(std::string root) : root_(std::move(root)) {
  root_ = fs::absolute(root_).lexically_normal().string();
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

namespace {

// A directory left by an interrupted init: the layout's directories, key slots (and
// temporary files), no config. Init may be run on it again.
bool interrupted_init(const fs::path& dir) {
  if (fs::exists(dir / "config")) return false;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!fs::is_directory(e.symlink_status()) ||
        std::find(std::begin(kLayoutDirs), std::end(kLayoutDirs), name) == std::end(kLayoutDirs))
      return false;
  }
  bool only_keys = true;
  walk(dir.string(), [&](const std::string& d, const std::string& name, const struct stat&) {
    only_keys &= d == (dir / "keys").string() || is_temp_name(name);
  });
  return only_keys;
}

}  // namespace

std::unique_ptr<LocalStore> LocalStore::create(const std::string& root) {
  const fs::path target = fs::absolute(root).lexically_normal();
  if (fs::exists(target) && !(fs::is_directory(target) && (fs::is_empty(target) || interrupted_init(target))))
    fail(ErrorCategory::exists, "{} already exists and is not an empty directory", root);
  const std::string parent = target.parent_path().string();
  if (!fs::is_directory(parent)) fail(ErrorCategory::not_found, "directory {} does not exist", parent);
  auto store = std::make_unique<LocalStore>(target.string());
  const std::string& r = store->root_;
  make_directory(r);
  ::chmod(r.c_str(), 0700);
  // The whole layout, as earlier arche versions expect to find it.
  for (const char* sub : kLayoutDirs) make_directory(r + "/" + sub);
  for (int i = 0; i < 256; ++i) make_directory(fmt::format("{}/data/{:02x}", r, i));
  for (int i = 0; i < 256; ++i) sync_directory(fmt::format("{}/data/{:02x}", r, i));
  for (const char* sub : kLayoutDirs) sync_directory(r + "/" + sub);
  sync_directory(r);
  sync_directory(parent);
  return store;
}

StoreCapabilities LocalStore::capabilities() const {
  StoreCapabilities c;
  c.atomic_rename = true;
  c.exclusive_create = true;
  c.consistent_listing = true;
  c.local = true;
  c.parallelism = 2;
  return c;
}

std::string LocalStore::path_of(std::string_view name) const {
  check_object_name(name, location());
  // Names starting with '.' are this store's temporary files.
  if (name.front() == '.' || name.find("/.") != std::string_view::npos)
    fail(ErrorCategory::usage, "{}: '{}' is not a valid object name here (a '.' name is a temporary file)", location(), name);
  return root_ + "/" + std::string(name);
}

std::string LocalStore::temp_path_for(const std::string& path) {
  const fs::path p(path);
  const std::string dir = p.parent_path().string();
  make_parents(root_, dir);
  return dir + "/" + make_temp_name(p.filename().string(), ++temp_counter_);
}

void LocalStore::publish(const std::string& temp, const std::string& path, WriteMode mode) {
  if (mode == WriteMode::create) {
    // link(2) refuses an existing name atomically on every file system.
    if (::link(temp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(temp.c_str());
      if (err == EEXIST) fail(ErrorCategory::exists, "{}: {} exists already", root_, path.substr(root_.size() + 1));
      throw_errno(err, "link " + temp + " to " + path);
    }
    ::unlink(temp.c_str());
  } else if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    throw_errno(err, "rename " + temp + " to " + path);
  }
  sync_directory(fs::path(path).parent_path().string());
}

std::vector<ObjectInfo> LocalStore::list(std::string_view prefix) {
  // The directory that holds everything starting with `prefix`.
  const size_t slash = prefix.rfind('/');
  const std::string dir = slash == std::string_view::npos ? root_ : root_ + "/" + std::string(prefix.substr(0, slash));
  struct stat st {};
  if (::stat(root_.c_str(), &st) != 0) throw_errno(errno, "repository " + root_);
  std::vector<ObjectInfo> out;
  walk(dir, [&](const std::string& d, const std::string& name, const struct stat& s) {
    std::string rel = d.size() > root_.size() ? d.substr(root_.size() + 1) + "/" + name : name;
    if (name[0] == '.' || rel.compare(0, prefix.size(), prefix) != 0) return;
    out.push_back({std::move(rel), static_cast<uint64_t>(s.st_size), static_cast<int64_t>(s.st_mtim.tv_sec)});
  });
  return out;
}

std::optional<ObjectInfo> LocalStore::stat(std::string_view name) {
  struct stat st {};
  if (::lstat(path_of(name).c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw_errno(errno, "stat " + path_of(name));
  }
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  return ObjectInfo{std::string(name), static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec)};
}

std::vector<uint8_t> LocalStore::read(std::string_view name) {
  File f = File::open(path_of(name), OpenMode::read_only);
  std::vector<uint8_t> data(f.size());
  f.read_exact(0, data);
  return data;
}

std::vector<uint8_t> LocalStore::read_range(std::string_view name, uint64_t offset, uint64_t length) {
  File f = File::open(path_of(name), OpenMode::read_only);
  std::vector<uint8_t> data(length);
  f.read_exact(offset, data);
  return data;
}

std::unique_ptr<ObjectReader> LocalStore::open(std::string_view name) {
  return std::make_unique<LocalReader>(File::open(path_of(name), OpenMode::read_only));
}

void LocalStore::write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) {
  const std::string path = path_of(name);
  const std::string temp = temp_path_for(path);
  try {
    File f = create_temp(temp);
    f.write_all(0, data);
    f.sync_data();
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  publish(temp, path, mode);
}

std::unique_ptr<ObjectWriter> LocalStore::create(std::string_view name, WriteMode mode) {
  return std::make_unique<LocalWriter>(*this, path_of(name), mode);
}

void LocalStore::remove(std::string_view name) {
  const std::string path = path_of(name);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return;  // another process won the race
    throw_errno(errno, "remove " + path);
  }
  sync_directory(fs::path(path).parent_path().string());
}

std::vector<ObjectInfo> LocalStore::list_temporaries() {
  std::vector<ObjectInfo> out;
  walk(root_, [&](const std::string& d, const std::string& name, const struct stat& s) {
    if (!is_temp_name(name)) return;
    std::string rel = d.size() > root_.size() ? d.substr(root_.size() + 1) + "/" + name : name;
    out.push_back({std::move(rel), static_cast<uint64_t>(s.st_size), static_cast<int64_t>(s.st_mtim.tv_sec)});
  });
  std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
  return out;
}

std::vector<ObjectInfo> LocalStore::remove_dead_temporaries() {
  std::vector<ObjectInfo> removed;
  std::function<void(const std::string&)> sweep = [&](const std::string& dir) {
    for (const RemovedTemp& t : remove_dead_temp_files(dir))
      removed.push_back({t.path.substr(root_.size() + 1), t.size, 0});
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d))
      if (e->d_type == DT_DIR && e->d_name[0] != '.') subdirs.push_back(dir + "/" + e->d_name);
    ::closedir(d);
    for (const std::string& s : subdirs) sweep(s);
  };
  sweep(root_);
  return removed;
}

}  // namespace arche::backup
