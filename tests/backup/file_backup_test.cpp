// Files and directories (acceptance 1): a tree with hard links, symlinks, xattrs,
// odd names, modes, owners and times restores identically; unchanged files are not
// read again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <map>

#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

// Everything that must survive a backup and restore, of one entry.
struct Entry {
  std::string type;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  std::string target;
  std::map<std::string, std::string> xattrs;
  std::string hardlink_group;  // the first path with the same inode
  bool operator==(const Entry&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Entry& e) {
  os << e.type << " mode " << std::oct << e.mode << std::dec << " " << e.uid << ":" << e.gid << " mtime "
     << e.mtime_ns << " size " << e.size << " target '" << e.target << "' xattrs " << e.xattrs.size() << " link "
     << e.hardlink_group;
  return os;
}

std::map<std::string, Entry> describe(const std::string& root) {
  std::map<std::string, Entry> out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::vector<std::string> paths{""};
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    paths.push_back(it->path().string().substr(root.size()));
  std::sort(paths.begin(), paths.end());
  for (const std::string& rel : paths) {
    const std::string p = root + rel;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    Entry e;
    e.type = S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : S_ISREG(st.st_mode) ? "file" : "other";
    e.mode = st.st_mode;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    if (e.type != "link") e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    if (e.type == "file") e.size = static_cast<uint64_t>(st.st_size);
    if (e.type == "link") {
      char buf[4096];
      ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
      e.target.assign(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    }
    char names[4096];
    ssize_t n = ::llistxattr(p.c_str(), names, sizeof names);
    for (ssize_t pos = 0; pos < n;) {
      std::string name(names + pos);
      pos += static_cast<ssize_t>(name.size()) + 1;
      if (name.rfind("security.", 0) == 0) continue;  // labels the system sets itself
      char value[4096];
      ssize_t v = ::lgetxattr(p.c_str(), name.c_str(), value, sizeof value);
      e.xattrs[name] = std::string(value, static_cast<size_t>(std::max<ssize_t>(v, 0)));
    }
    if (e.type == "file" && st.st_nlink > 1) {
      auto [it, fresh] = inodes.try_emplace({st.st_dev, st.st_ino}, rel);
      e.hardlink_group = it->second;
    }
    out[rel] = e;
  }
  return out;
}

void set_mtime(const std::string& path, int64_t sec, long nsec, bool nofollow = false) {
  struct timespec t[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), t, nofollow ? AT_SYMLINK_NOFOLLOW : 0), 0) << path;
}

// The tree of acceptance 1.
void build_tree(const std::string& root) {
  fs::create_directories(root + "/docs/deep/er/still");
  arche::test::write_file(root + "/empty", {});
  write_random_file(root + "/small.bin", 1000, 1);
  write_random_file(root + "/medium.bin", 3u << 20, 2);
  write_random_file(root + "/large.bin", 20u << 20, 3);  // > 16 MiB: chunks spread over the workers
  std::vector<uint8_t> text;
  for (int i = 0; i < 20000; ++i) {
    std::string line = "Rechnung " + std::to_string(i) + ": 42,00 EUR\n";
    text.insert(text.end(), line.begin(), line.end());
  }
  arche::test::write_file(root + "/docs/rechnungen.txt", text);
  // A sparse file: data, a large hole, data.
  {
    int fd = ::open((root + "/sparse.img").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "start", 5, 0), 5);
    ASSERT_EQ(::pwrite(fd, "end", 3, 50u << 20), 3);
    ::close(fd);
  }
  // Odd names: spaces, a newline, UTF-8, a leading dash, backslash, 255 bytes.
  for (std::string name : {std::string("with space"), std::string("new\nline"), std::string("Grüße €.txt"),
                           std::string("-rf"), std::string("back\\slash"), std::string(255, 'n'),
                           std::string("\xff\xfe invalid utf8")})
    arche::test::write_file(root + "/docs/" + name, std::vector<uint8_t>(name.begin(), name.end()));
  // Links.
  ASSERT_EQ(::symlink("../medium.bin", (root + "/docs/relative-link").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/target", (root + "/dangling").c_str()), 0);
  ASSERT_EQ(::link((root + "/small.bin").c_str(), (root + "/docs/deep/hardlink-to-small").c_str()), 0);
  ASSERT_EQ(::link((root + "/small.bin").c_str(), (root + "/hardlink-2").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0640), 0);
  // Extended attributes, also binary ones and on a directory.
  ASSERT_EQ(::setxattr((root + "/medium.bin").c_str(), "user.comment", "backup me", 9, 0), 0);
  ASSERT_EQ(::setxattr((root + "/medium.bin").c_str(), "user.binary", "\0\1\2", 3, 0), 0);
  ASSERT_EQ(::setxattr((root + "/docs").c_str(), "user.dir", "d", 1, 0), 0);
  // Modes, owners, times.
  ASSERT_EQ(::chmod((root + "/small.bin").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((root + "/docs/deep").c_str(), 0750), 0);
  ASSERT_EQ(::chmod((root + "/medium.bin").c_str(), 0755), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((root + "/medium.bin").c_str(), 1234, 5678), 0);
    ASSERT_EQ(::lchown((root + "/dangling").c_str(), 4321, 8765), 0);
    ASSERT_EQ(::chmod((root + "/large.bin").c_str(), 04755), 0);  // set-uid survives chown on restore
    ASSERT_EQ(::mknod((root + "/chardev").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
  }
  set_mtime(root + "/medium.bin", 1000000000, 123456789);
  set_mtime(root + "/dangling", 1100000000, 5, true);
  set_mtime(root + "/docs/deep/er", 1200000000, 0);
}

class BackupFiles : public RepositoryTest {
 protected:
  void SetUp() override {
    RepositoryTest::SetUp();
    src = dir.file("src");
    build_tree(src);
  }
  Json create(const std::string& name, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"create", repo + "::" + name, src, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Json::parse(backup_ok(args).out);
  }
  std::string src;
};

TEST_F(BackupFiles, TreeWithLinksXattrsAndOddNamesRestoresIdentically) {
  Json j = create("one");
  EXPECT_GE(j["stats"]["files"].get<uint64_t>(), 14u);
  const std::string out = dir.file("out");
  CommandResult r = backup_ok({"restore", repo + "::one", "--to", out});
  const std::string restored = out + src;  // full path below the target, like tar
  std::map<std::string, Entry> want = describe(src), got = describe(restored);
  for (const auto& [path, e] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      ADD_FAILURE() << "missing after restore: '" << path << "'";
      continue;
    }
    EXPECT_EQ(it->second, e) << "'" << path << "'";
  }
  EXPECT_EQ(got.size(), want.size());
  for (std::string f : {"/small.bin", "/medium.bin", "/large.bin", "/docs/rechnungen.txt", "/sparse.img",
                               "/docs/new\nline", "/empty"})
    EXPECT_TRUE(same_content(src + f, restored + f)) << f;
  // The hard links are one file again, and the sparse file is sparse.
  struct stat a {}, b {}, sparse {};
  ::stat((restored + "/small.bin").c_str(), &a);
  ::stat((restored + "/hardlink-2").c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ::stat((restored + "/sparse.img").c_str(), &sparse);
  EXPECT_LT(sparse.st_blocks * 512, 1 << 20);
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
}

TEST_F(BackupFiles, UnchangedFilesAreNotReadAgain) {
  Json first = create("one");
  EXPECT_GT(first["stats"]["bytes-read"].get<uint64_t>(), 23u << 20);
  Json second = create("two");
  EXPECT_EQ(second["stats"]["bytes-read"], 0u);
  EXPECT_EQ(second["stats"]["unchanged-files"], second["stats"]["files"]);
  // One file changes: only it is read (size, mtime, ctime or inode differ).
  write_random_file(src + "/medium.bin", 3u << 20, 99);
  Json third = create("three");
  EXPECT_EQ(third["stats"]["bytes-read"], 3u << 20);
  EXPECT_EQ(third["stats"]["unchanged-files"].get<uint64_t>() + 1, third["stats"]["files"].get<uint64_t>());
  const std::string out = dir.file("out");
  backup_ok({"restore", repo + "::three", "--to", out});
  EXPECT_TRUE(same_content(src + "/medium.bin", out + src + "/medium.bin"));
  EXPECT_TRUE(same_content(src + "/large.bin", out + src + "/large.bin"));
  // The parent can be given explicitly.
  Json fourth = create("four", {"--parent", "one"});
  EXPECT_EQ(fourth["stats"]["bytes-read"], 3u << 20);
}

TEST_F(BackupFiles, RestoreOfSelectedPaths) {
  create("one");
  const std::string out = dir.file("out");
  backup_ok({"restore", repo + "::one", "--to", out, src + "/docs/deep", src + "/small.bin"});
  EXPECT_TRUE(fs::exists(out + src + "/docs/deep/hardlink-to-small"));
  EXPECT_TRUE(fs::exists(out + src + "/small.bin"));
  EXPECT_FALSE(fs::exists(out + src + "/large.bin"));
  EXPECT_FALSE(fs::exists(out + src + "/docs/rechnungen.txt"));
  CommandResult r = backup({"restore", repo + "::one", "--to", dir.file("o2"), src + "/no/such/file"});
  EXPECT_EQ(r.exit_code, 66) << r.err;
  // Restoring over existing files needs --overwrite.
  r = backup({"restore", repo + "::one", "--to", out, src + "/small.bin"});
  EXPECT_EQ(r.exit_code, 73) << r.err;
  backup_ok({"restore", repo + "::one", "--to", out, src + "/small.bin", "--overwrite"});
  // A relative PATH means what create stored for it: seen from the current directory.
  const fs::path parent = fs::path(src).parent_path();
  const std::string relative = fs::path(src).filename().string() + "/small.bin";
  CommandResult rel = arche::test::run({"sh", "-c", "cd '" + parent.string() + "' && exec '" + arche::test::arche_binary() +
                                          "' backup restore '" + repo + "::one' --to '" + dir.file("o3") + "' '" +
                                          relative + "'"});
  ASSERT_EQ(rel.exit_code, 0) << rel.err;
  EXPECT_TRUE(fs::exists(dir.file("o3") + src + "/small.bin"));
  EXPECT_FALSE(fs::exists(dir.file("o3") + src + "/large.bin"));
}

TEST_F(BackupFiles, ExcludesAndTheRepositoryItselfAreSkipped) {
  // A repository inside the backed-up tree is not backed up into itself.
  const std::string inner = src + "/repo-inside";
  init_repo(inner);
  Json j = Json::parse(
      backup_ok({"create", inner + "::x", src, "--exclude", "*.bin", "--exclude", "fifo", "--json"}).out);
  const std::string out = dir.file("out");
  backup_ok({"restore", inner + "::x", "--to", out});
  EXPECT_FALSE(fs::exists(out + src + "/large.bin"));
  EXPECT_FALSE(fs::exists(out + src + "/fifo"));
  EXPECT_TRUE(fs::exists(out + src + "/docs/rechnungen.txt"));
  EXPECT_TRUE(fs::is_directory(out + src + "/repo-inside"));
  EXPECT_FALSE(fs::exists(out + src + "/repo-inside/config")) << "the repository was backed up into itself";
}

TEST_F(BackupFiles, SeveralPathsAndSingleFiles) {
  const std::string other = dir.file("other");
  fs::create_directories(other);
  write_random_file(other + "/x", 100, 5);
  backup_ok({"create", repo + "::multi", src + "/docs", other + "/x"});
  const std::string out = dir.file("out");
  backup_ok({"restore", repo + "::multi", "--to", out});
  EXPECT_TRUE(same_content(other + "/x", out + other + "/x"));
  EXPECT_TRUE(same_content(src + "/docs/rechnungen.txt", out + src + "/docs/rechnungen.txt"));
  EXPECT_FALSE(fs::exists(out + src + "/small.bin"));
  CommandResult missing = backup({"create", repo + "::bad", dir.file("does-not-exist")});
  EXPECT_EQ(missing.exit_code, 66) << missing.err;
}

// Issue 9, point 6: holes are found with SEEK_DATA/SEEK_HOLE, not read.
TEST_F(BackupFiles, SparseFilesAreReadByTheirDataAndRestoreSparse) {
  const std::string sparse_dir = dir.file("sparse");
  fs::create_directories(sparse_dir);
  const std::string huge = sparse_dir + "/huge.img";
  constexpr uint64_t kSize = uint64_t{100} << 30;
  const std::vector<std::pair<uint64_t, uint8_t>> bytes{{0, 'a'}, {kSize / 2, 'b'}, {kSize - 1, 'c'}};
  {
    File f = File::open(huge, OpenMode::create_new);
    f.truncate(kSize);
    for (auto [at, b] : bytes) f.write_all(at, std::span(&b, 1));
  }
  // Holes shorter than a chunk are read as the zeros they are.
  const std::string holes = sparse_dir + "/small-holes.img";
  {
    File f = File::open(holes, OpenMode::create_new);
    f.truncate(8u << 20);
    std::vector<uint8_t> block = arche::test::random_bytes(4096, 901);
    for (uint64_t at = 0; at < (8u << 20); at += 512u << 10) f.write_all(at, block);
  }
  Json j = Json::parse(backup_ok({"create", repo + "::sparse", sparse_dir, "--json"}).out);
  EXPECT_EQ(j["stats"]["total-bytes"].get<uint64_t>(), kSize + (8u << 20));
  EXPECT_LT(j["stats"]["bytes-read"].get<uint64_t>(), (8u << 20) + (1u << 20)) << "the 100 GiB of holes were not read";
  const std::string out = dir.file("out");
  backup_ok({"restore", repo + "::sparse", "--to", out});
  const std::string restored = out + huge;
  File r = File::open(restored, OpenMode::read_only);
  EXPECT_EQ(r.size(), kSize);
  EXPECT_LT(r.allocated_bytes(), 1u << 20) << "restored sparse";
  for (auto [at, b] : bytes) {
    uint8_t got = 0;
    r.read_exact(at, std::span(&got, 1));
    EXPECT_EQ(got, b) << "at " << at;
  }
  uint8_t between = 1;
  r.read_exact(kSize / 4, std::span(&between, 1));
  EXPECT_EQ(between, 0);
  EXPECT_TRUE(same_content(holes, out + holes));
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  // Unchanged on the next run: not read at all.
  Json again = Json::parse(backup_ok({"create", repo + "::sparse2", sparse_dir, "--json"}).out);
  EXPECT_EQ(again["stats"]["bytes-read"], 0u);
}

}  // namespace
}  // namespace arche::backup::test
