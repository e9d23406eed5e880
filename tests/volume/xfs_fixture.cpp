#include "tests/volume/xfs_fixture.h"

#include <boost/filesystem.hpp>
#include <fstream>
#include <sstream>

namespace arche::test {

std::string xfs_db(const std::string& image, const std::vector<std::string>& commands) {
  std::vector<std::string> argv{"xfs_db", "-r"};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  return run_ok(argv).out;
}

std::string xfs_db_field(const std::string& image, const std::string& path, const std::string& field) {
  std::string out = xfs_db(image, {"path " + path, "print " + field});
  const std::string prefix = field + " = ";
  size_t at = out.find(prefix);
  if (at == std::string::npos) return {};
  at += prefix.size();
  return out.substr(at, out.find('\n', at) - at);
}

std::vector<volume::ByteRange> xfs_db_extents(const std::string& image, const std::string& path, uint32_t block_size,
                                              uint32_t ag_blocks) {
  // "data offset 0 startblock 24 (0/24) count 1 flag 0"
  std::istringstream lines(xfs_db(image, {"path " + path, "bmap"}));
  std::vector<volume::ByteRange> out;
  for (std::string line; std::getline(lines, line);) {
    uint64_t offset, fsbno, agno, agbno, count;
    int flag;
    if (std::sscanf(line.c_str(), "data offset %lu startblock %lu (%lu/%lu) count %lu flag %d", &offset, &fsbno, &agno,
                    &agbno, &count, &flag) != 6)
      continue;
    out.push_back({(agno * ag_blocks + agbno) * block_size, count * block_size});
  }
  return out;
}

std::map<std::string, HostEntry> make_xfs_v5(const std::string& image, const std::string& work) {
  run_ok({"truncate", "-s", "1G", image});
  run_ok({"mkfs.xfs", "-q", "-f", "-L", "arche-v5", image});
  write_file(work + "/big.bin", random_bytes(110u << 20, 11));
  write_file(work + "/deep.bin", random_bytes(300000, 12));
  const std::string mnt = work + "/mnt";
  LoopMount mount(image, mnt, "noatime");
  // Every other block of frag.bin first, then the gaps, with O_DIRECT (allocated
  // at once, not delayed): one extent per block, a btree block map.
  const char* script = R"SH(
set -euo pipefail
cd "$M"
mkdir -p nested/level2/level3 dirs/short dirs/block dirs/leaf dirs/node dirs/btree
printf 'hello\n' > a.txt
cp "$W/big.bin" big.bin
cp "$W/deep.bin" nested/level2/level3/deep.bin
ln a.txt hardlink.txt
ln a.txt nested/hardlink2.txt
ln -s a.txt shortlink
ln -s "$(printf 'long/%.0s' $(seq 150))target" longlink
ln -s "$(printf 'x%.0s' $(seq 1023))" maxlink
printf 'umlaut\n' > 'Ärger €.txt'
printf 'japanese\n' > '日本語.txt'
printf 'outside the BMP\n' > '😀.txt'
: > empty
for i in 1 2 3; do echo $i > dirs/short/s$i; done
for i in $(seq 30); do echo $i > dirs/block/entry-$i; done
for i in $(seq 300); do echo $i > dirs/leaf/entry-$i; done
for i in $(seq 3000); do : > dirs/node/entry-number-$i; done
# Directory blocks interleaved with file data: a directory whose map is a btree.
for b in $(seq 40); do
  for i in $(seq 250); do echo "$b $i" > dirs/btree/entry-with-a-longer-name-$b-$i; done
  sync
done
args=()
for i in $(seq 0 2 799) $(seq 1 2 799); do args+=(-c "pwrite -S $((i % 251)) $((i * 4096)) 4096"); done
xfs_io -f -d "${args[@]}" frag.bin > /dev/null
xfs_io -f -c "falloc 0 1m" -c "pwrite -S 0x77 256k 4k" unwritten.bin > /dev/null
xfs_io -f -c "pwrite -S 0x55 0 4k" -c "pwrite -S 0x66 700m 4k" sparse.bin > /dev/null
mkfifo fifo
mknod chardev c 1 3
chown 1234:5678 a.txt
chmod 4750 big.bin
chmod 1777 nested
touch -d @2200000000.5 nested/level2/level3/deep.bin
touch -d @-300000000 'Ärger €.txt'
touch -h -d @1234567890.123456789 shortlink
)SH";
  run_ok({"env", "M=" + mnt, "W=" + work, "bash", "-c", script});
  auto tree = scan_host_tree(mnt);
  mount.unmount();
  return tree;
}

std::map<std::string, ProtoEntry> make_xfs_v4(const std::string& image, const std::string& work) {
  using volume::FileType;
  std::map<std::string, ProtoEntry> expected;
  const std::string src = work + "/proto-src";
  boost::filesystem::create_directories(src);
  write_file(src + "/big.bin", random_bytes(110u << 20, 21));
  write_file(src + "/deep.bin", random_bytes(70000, 22));
  write_file(src + "/small.txt", {'s', 'm', 'a', 'l', 'l', '\n'});
  write_file(src + "/empty", {});

  // Protofile: "name mode uid gid [source|target]" per entry, "$" closes a directory.
  std::ostringstream p;
  p << "arche\n0 0\nd--755 0 0\n";
  expected["/"] = {FileType::directory, 0755, 0, 0, {}, {}};
  auto file = [&](const std::string& dir, const std::string& name, const std::string& mode, uint32_t uid, uint32_t gid,
                  const std::string& source) {
    p << name << " " << mode << " " << uid << " " << gid << " " << source << "\n";
    expected[dir + "/" + name] = {FileType::regular,
                                  static_cast<uint32_t>(std::stoul(mode.substr(3), nullptr, 8)) |
                                      (mode[1] == 'u' ? 04000u : 0) | (mode[2] == 'g' ? 02000u : 0),
                                  uid,
                                  gid,
                                  source,
                                  {}};
  };
  auto dir = [&](const std::string& parent, const std::string& name, const std::string& mode) {
    p << name << " d--" << mode << " 0 0\n";
    expected[parent + "/" + name] = {
        FileType::directory, static_cast<uint32_t>(std::stoul(mode, nullptr, 8)), 0, 0, {}, {}};
    return parent + "/" + name;
  };
  auto link = [&](const std::string& parent, const std::string& name, const std::string& target) {
    p << name << " l--777 0 0 " << target << "\n";
    expected[parent + "/" + name] = {FileType::symlink, 0777, 0, 0, {}, target};
  };
  file("", "a.txt", "---644", 1234, 5678, src + "/small.txt");
  file("", "big.bin", "-u-750", 0, 0, src + "/big.bin");
  file("", "empty", "---600", 0, 0, src + "/empty");
  file("", "\xc3\x84rger\xe2\x82\xac.txt", "---644", 0, 0, src + "/small.txt");
  file("", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", "---644", 0, 0, src + "/small.txt");
  link("", "shortlink", "a.txt");
  std::string long_target;
  for (int i = 0; i < 150; ++i) long_target += "long/";
  link("", "longlink", long_target + "target");
  link("", "maxlink", std::string(1023, 'x'));  // the longest XFS allows
  p << "fifo p--644 0 0\n";
  expected["/fifo"] = {FileType::fifo, 0644, 0, 0, {}, {}};
  p << "chardev c--644 0 0 1 3\n";
  expected["/chardev"] = {FileType::char_device, 0644, 0, 0, {}, {}};
  const std::string nested = dir("", "nested", "755");
  const std::string level2 = dir(nested, "level2", "700");
  const std::string level3 = dir(level2, "level3", "755");
  file(level3, "deep.bin", "---644", 0, 0, src + "/deep.bin");
  p << "$\n$\n$\n";
  const std::string dirs = dir("", "dirs", "755");
  const std::pair<const char*, int> shapes[] = {{"short", 3}, {"block", 30}, {"leaf", 300}, {"node", 3000}};
  for (const auto& [shape, count] : shapes) {
    const std::string d = dir(dirs, shape, "755");
    for (int i = 0; i < count; ++i) file(d, "entry-number-" + std::to_string(i), "---644", 0, 0, src + "/empty");
    p << "$\n";
  }
  // Files with data between the directory's blocks: its map becomes a btree.
  const std::string btree = dir(dirs, "btree", "755");
  for (int i = 0; i < 3000; ++i)
    file(btree, "entry-with-data-" + std::to_string(i), "---644", 0, 0, src + "/small.txt");
  p << "$\n$\n$\n";
  std::ofstream(work + "/proto") << p.str();

  run_ok({"truncate", "-s", "1G", image});
  run_ok({"mkfs.xfs", "-q", "-f", "-m", "crc=0", "-L", "arche-v4", "-p", work + "/proto", image});
  return expected;
}

}  // namespace arche::test
