#include "tests/volume/volume_test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "core/file.h"
#include "image/format.h"

namespace arche::volume::testing {

std::string make_fixture(const std::vector<std::string>& args) {
  std::vector<std::string> argv{std::string(ARCHE_SOURCE_DIR) + "/tests/volume/make_fixture.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  test::CommandResult r = test::run(argv);
  EXPECT_EQ(r.exit_code, 0) << "make_fixture.sh " << args[0] << ": " << r.err;
  if (r.exit_code != 0) throw std::runtime_error("fixture failed");
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::shared_ptr<image::BlockDevice> open_raw(const std::string& path) {
  image::OpenOptions o;
  o.format = "raw";
  return image::open_image(path, o);
}

size_t volume_index(const Tree& tree, const std::string& name, uint32_t disk) {
  const auto& v = tree.volumes();
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i].name == name && (v[i].disk == disk || v[i].kind == VolumeKind::volume_group ||
                              v[i].kind == VolumeKind::logical_volume))
      return i;
  ADD_FAILURE() << "no volume " << name;
  return v.size();
}

namespace {

std::vector<std::string> host_names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string host_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

// Compares the file's bytes with the host file in 1 MiB steps.
void expect_same_bytes(Filesystem& fs, const std::string& path, const std::string& host, uint64_t size) {
  File f = File::open(host, OpenMode::read_only);
  std::vector<uint8_t> a(1 << 20), b(1 << 20);
  for (uint64_t off = 0; off < size; off += a.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(a.size(), size - off));
    ASSERT_EQ(fs.read(path, off, std::span(a.data(), n)), n) << path << " at " << off;
    f.read_exact(off, std::span(b.data(), n));
    ASSERT_EQ(std::memcmp(a.data(), b.data(), n), 0) << path << ": bytes differ in the MiB at " << off;
  }
  uint8_t past;
  EXPECT_EQ(fs.read(path, size, std::span(&past, 1)), 0u) << path << ": data beyond its size";
}

}  // namespace

size_t expect_same_tree(Filesystem& fs, const std::string& fs_dir, const std::string& host_dir, const Compare& how) {
  size_t files = 0;
  std::vector<DirEntry> entries = fs.list(fs_dir);
  std::vector<std::string> names;
  for (const DirEntry& e : entries)
    if (fs_dir != "/" || std::find(how.ignore.begin(), how.ignore.end(), e.name) == how.ignore.end())
      names.push_back(e.name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> want = host_names(host_dir);
  if (!how.symlinks)
    std::erase_if(want, [&](const std::string& n) {
      struct stat st {};
      return ::lstat((host_dir + "/" + n).c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    });
  EXPECT_EQ(names, want) << "listing of " << fs_dir;
  const bool owner = how.owner && ::geteuid() == 0;
  for (const DirEntry& e : entries) {
    const std::string host = host_dir + "/" + e.name;
    const std::string path = fs_dir == "/" ? "/" + e.name : fs_dir + "/" + e.name;
    struct stat st {};
    if (::lstat(host.c_str(), &st) != 0) continue;  // reported by the listing comparison
    SCOPED_TRACE(path);
    const FileStat s = fs.stat(path);
    EXPECT_EQ(s.type, e.stat.type) << "stat and list disagree";
    EXPECT_EQ(s.mtime_ns / 1000000000, st.st_mtim.tv_sec) << "mtime";
    if (how.mode && !S_ISLNK(st.st_mode)) {
      EXPECT_EQ(s.mode, st.st_mode & 07777) << "mode";
    }
    if (owner) {
      EXPECT_EQ(s.uid, st.st_uid);
      EXPECT_EQ(s.gid, st.st_gid);
    }
    if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(s.type, FileType::directory);
      files += expect_same_tree(fs, path, host, how);
    } else if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(s.type, FileType::symlink);
      EXPECT_EQ(fs.readlink(path), host_link(host));
    } else if (S_ISREG(st.st_mode)) {
      EXPECT_EQ(s.type, FileType::regular);
      EXPECT_EQ(s.size, static_cast<uint64_t>(st.st_size)) << "size";
      expect_same_bytes(fs, path, host, static_cast<uint64_t>(st.st_size));
      ++files;
    }
  }
  return files;
}

void expect_same_host_tree(const std::string& a, const std::string& b, bool owner) {
  std::vector<std::string> na = host_names(a), nb = host_names(b);
  EXPECT_EQ(na, nb) << a << " vs " << b;
  for (const std::string& n : na) {
    const std::string pa = a + "/" + n, pb = b + "/" + n;
    struct stat sa {}, sb {};
    if (::lstat(pa.c_str(), &sa) != 0 || ::lstat(pb.c_str(), &sb) != 0) continue;
    SCOPED_TRACE(pa);
    EXPECT_EQ(sa.st_mode, sb.st_mode);
    if (owner) {
      EXPECT_EQ(sa.st_uid, sb.st_uid);
      EXPECT_EQ(sa.st_gid, sb.st_gid);
    }
    if (!S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
    }
    if (S_ISDIR(sa.st_mode)) {
      expect_same_host_tree(pa, pb, owner);
    } else if (S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(host_link(pa), host_link(pb));
    } else if (S_ISREG(sa.st_mode)) {
      ASSERT_EQ(sa.st_size, sb.st_size);
      EXPECT_EQ(test::run({"cmp", "-s", pa, pb}).exit_code, 0) << "contents differ";
    }
  }
}

}  // namespace arche::volume::testing
