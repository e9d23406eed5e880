#include "tests/volume/fat_xfs_test_util.h"

#include <dirent.h>
#include <unistd.h>

#include <boost/filesystem.hpp>
#include <functional>

#include "core/crc32c.h"
#include "core/file.h"
#include "image/format.h"

namespace arche::test {
namespace {

struct Digest {
  Content c;
  Digest() { c.fnv = 1469598103934665603ull; }
  void add(std::span<const uint8_t> data) {
    c.size += data.size();
    c.crc = crc32c(c.crc, data.data(), data.size());
    for (uint8_t b : data) c.fnv = (c.fnv ^ b) * 1099511628211ull;
  }
};

volume::FileType type_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return volume::FileType::regular;
    case S_IFDIR: return volume::FileType::directory;
    case S_IFLNK: return volume::FileType::symlink;
    case S_IFBLK: return volume::FileType::block_device;
    case S_IFCHR: return volume::FileType::char_device;
    case S_IFIFO: return volume::FileType::fifo;
    case S_IFSOCK: return volume::FileType::socket;
  }
  return volume::FileType::unknown;
}

}  // namespace

std::string real_images_dir() {
  if (const char* env = std::getenv("ARCHE_REAL_IMAGES")) return env;
  // The project checkout sits beside shared/ (main) or one level deeper (a worktree).
  for (const char* up : {"/../shared/fixtures/real-images", "/../../shared/fixtures/real-images"}) {
    std::string dir = std::string(ARCHE_SOURCE_DIR) + up;
    if (boost::filesystem::is_directory(dir)) return boost::filesystem::canonical(dir).string();
  }
  return {};
}

Content content_of_host_file(const std::string& path) {
  File f = File::open(path, OpenMode::read_only);
  Digest d;
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t at = 0;;) {
    size_t n = f.read_some(at, buf);
    if (n == 0) break;
    d.add(std::span(buf).first(n));
    at += n;
  }
  return d.c;
}

Content content_of(volume::Filesystem& fs, const std::string& path, size_t piece) {
  Digest d;
  std::vector<uint8_t> buf(piece);
  for (uint64_t at = 0;;) {
    size_t n = fs.read(path, at, buf);
    if (n == 0) break;
    d.add(std::span(buf).first(n));
    at += n;
  }
  return d.c;
}

std::map<std::string, HostEntry> scan_host_tree(const std::string& root) {
  std::map<std::string, HostEntry> out;
  std::function<void(const std::string&, const std::string&)> visit = [&](const std::string& host,
                                                                          const std::string& rel) {
    HostEntry e;
    if (::lstat(host.c_str(), &e.st) != 0) throw std::runtime_error("lstat " + host);
    e.type = type_of(e.st.st_mode);
    if (e.type == volume::FileType::regular) e.content = content_of_host_file(host);
    if (e.type == volume::FileType::symlink) e.target = boost::filesystem::read_symlink(host).string();
    out[rel.empty() ? "/" : rel] = e;
    if (e.type != volume::FileType::directory) return;
    DIR* d = ::opendir(host.c_str());
    if (!d) throw std::runtime_error("opendir " + host);
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != ".." && !(rel.empty() && n == "lost+found")) names.push_back(n);
    }
    ::closedir(d);
    for (const std::string& n : names) visit(host + "/" + n, rel + "/" + n);
  };
  visit(root, "");
  return out;
}

std::map<std::string, FsEntry> walk_filesystem(volume::Filesystem& fs) {
  std::map<std::string, FsEntry> out;
  std::function<void(const std::string&, int)> visit = [&](const std::string& dir, int depth) {
    if (depth > 64) throw std::runtime_error("tree deeper than 64 levels at " + dir);
    for (const volume::DirEntry& e : fs.list(dir)) {
      const std::string path = (dir == "/" ? "" : dir) + "/" + e.name;
      FsEntry entry{e.stat, {}, {}};
      if (e.stat.type == volume::FileType::regular) entry.content = content_of(fs, path);
      if (e.stat.type == volume::FileType::symlink) entry.target = fs.readlink(path);
      if (!out.emplace(path, entry).second) throw std::runtime_error("listed twice: " + path);
      if (e.stat.type == volume::FileType::directory) visit(path, depth + 1);
    }
  };
  out["/"] = FsEntry{fs.stat("/"), {}, {}};
  visit("/", 0);
  return out;
}

std::shared_ptr<image::BlockDevice> open_raw(const std::string& path) {
  image::OpenOptions o;
  o.format = "raw";
  return image::open_image(path, o);
}

void copy_ranges(const std::string& source, const std::string& target, const std::vector<volume::ByteRange>& ranges) {
  File in = File::open(source, OpenMode::read_only);
  File out = File::open(target, OpenMode::create_new);
  out.truncate(in.size());
  std::vector<uint8_t> buf(1 << 20);
  for (const volume::ByteRange& r : ranges) {
    for (uint64_t at = r.offset; at < r.offset + r.length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), r.offset + r.length - at));
      in.read_exact(at, std::span(buf).first(n));
      out.write_all(at, std::span(buf).first(n));
      at += n;
    }
  }
}

uint64_t total_length(const std::vector<volume::ByteRange>& ranges) {
  uint64_t n = 0;
  for (const auto& r : ranges) n += r.length;
  return n;
}

CommandResult run_ok(const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
  return r;
}

}  // namespace arche::test
