// The FAT12/16/32 reader (docs/volume.md "FAT"): directories with VFAT long
// names, file data through cluster chains, and the used ranges for P2V.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/endian.h"
#include "core/error.h"
#include "volume/fat_format.h"
#include "volume/fat_table.h"
#include "volume/reader_support.h"
#include "volume/readers.h"

namespace arche::volume {
namespace {

using fat::kEntrySize;

// The specification's limit: a directory holds at most 65536 entries (2 MiB).
constexpr uint64_t kMaxDirectoryBytes = uint64_t{65536} * kEntrySize;
// Files get inode numbers above every cluster number (directories use their
// first cluster), from the position of their directory entry.
constexpr uint64_t kFileInodeBase = uint64_t{1} << 32;
constexpr uint64_t kFixedRootInode = 1;

struct Entry {
  std::string name;        // long name, or the 8.3 name when there is no valid long one
  std::string short_name;  // the 8.3 name
  uint8_t attr = 0;
  uint32_t cluster = 0;
  uint32_t size = 0;
  uint16_t write_date = 0, write_time = 0, create_date = 0, create_time = 0, access_date = 0;
  uint8_t create_tenths = 0;
  uint64_t position = 0;  // byte offset of the 8.3 entry on the volume

  bool is_directory() const { return attr & fat::kAttrDirectory; }
};

struct Directory {
  std::vector<Entry> entries;
  // Long and 8.3 names, ASCII case folded as Windows (and Linux's vfat) compare
  // them -> entry; the first wins.
  std::unordered_map<std::string, size_t> index;
  std::string label;  // the volume label entry (only the root directory has one)
};

// The long name being collected from the entries before an 8.3 entry. Long-name
// entries come last part first (ordinal n | 0x40, then n-1 .. 1), 13 UTF-16 units
// each, all carrying the checksum of the 8.3 name they belong to.
struct LongName {
  std::vector<uint16_t> units;
  int next = 0;  // ordinal expected next; 0: complete (or none)
  uint8_t checksum = 0;
  bool active = false;

  void reset() { active = false; }

  void add(std::span<const uint8_t, kEntrySize> e) {
    const uint8_t ordinal = e[0] & 0x1f;
    const bool last = e[0] & 0x40;
    if (last) {
      if (ordinal == 0 || ordinal > 20) return reset();
      active = true;
      next = ordinal;
      checksum = e[13];
      units.assign(size_t{ordinal} * 13, 0xffff);
    } else if (!active || ordinal != next || e[13] != checksum) {
      return reset();
    }
    if (e[12] != 0 || load_le16(e.data() + 26) != 0) return reset();
    static constexpr size_t kUnitOffsets[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
    for (size_t i = 0; i < 13; ++i) units[(ordinal - 1) * 13 + i] = load_le16(e.data() + kUnitOffsets[i]);
    --next;
  }

  // The name when complete and belonging to this 8.3 entry.
  std::optional<std::string> take(std::span<const uint8_t, kEntrySize> short_entry) {
    if (!active || next != 0 || checksum != fat::short_name_checksum(short_entry)) return std::nullopt;
    active = false;
    size_t n = std::find(units.begin(), units.end(), 0) - units.begin();
    std::string name = fat::utf16_to_utf8(std::span(units).first(n));
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) return std::nullopt;
    return name;
  }
};

class FatFilesystem final : public Filesystem {
 public:
  FatFilesystem(std::shared_ptr<image::BlockDevice> volume, const fat::Geometry& geometry)
      : volume_(std::move(volume)), g_(geometry), table_(*volume_, g_) {
    if (g_.data_offset() > volume_->size())
      fail(ErrorCategory::corrupt, "fat: the FATs and root directory end at byte {}, the volume has only {}",
           g_.data_offset(), volume_->size());
    label_ = root_directory()->label;
  }

  std::string type() const override { return fmt::format("fat{}", g_.bits); }
  std::string label() const override { return label_; }
  std::string uuid() const override {
    return g_.serial ? fmt::format("{:04X}-{:04X}", *g_.serial >> 16, *g_.serial & 0xffff) : std::string();
  }
  uint64_t size_bytes() const override { return g_.volume_bytes(); }

  uint64_t used_bytes() const override {
    std::lock_guard lock(mutex_);
    if (!used_bytes_) {
      uint64_t clusters = 0;
      std::optional<uint32_t> free;
      if (g_.fsinfo_sector) {
        std::vector<uint8_t> sector(g_.bytes_per_sector);
        read_volume(*volume_, uint64_t{g_.fsinfo_sector} * g_.bytes_per_sector, sector, "fat");
        free = fat::parse_fsinfo_free_count(sector, g_);
      }
      if (free) {
        clusters = g_.cluster_count - *free;
      } else {
        table_.for_each_allocated([&](uint32_t, uint32_t count) { clusters += count; });
      }
      used_bytes_ = std::min(g_.data_offset() + clusters * g_.cluster_bytes, g_.volume_bytes());
    }
    return *used_bytes_;
  }

  FileStat stat(std::string_view path) override {
    std::lock_guard lock(mutex_);
    return stat_of(resolve(path));
  }

  std::vector<DirEntry> list(std::string_view path) override {
    std::lock_guard lock(mutex_);
    const Node node = resolve(path);
    if (!node.is_directory()) fail(ErrorCategory::usage, "fat: {}: not a directory", path);
    std::shared_ptr<const Directory> dir = directory(node, path);
    std::vector<DirEntry> out;
    out.reserve(dir->entries.size());
    for (const Entry& e : dir->entries) out.push_back({e.name, stat_of(Node{e, false})});
    return out;
  }

  size_t read(std::string_view path, uint64_t offset, std::span<uint8_t> out) override {
    std::lock_guard lock(mutex_);
    const Node node = resolve(path);
    if (node.is_directory()) fail(ErrorCategory::usage, "fat: {}: is a directory", path);
    const Entry& e = node.entry;
    if (offset >= e.size || out.empty()) return 0;
    const uint64_t n = std::min<uint64_t>(out.size(), e.size - offset);
    if (e.cluster == 0) fail(ErrorCategory::corrupt, "fat: {}: {} bytes but no cluster", path, e.size);
    const uint64_t needed = (uint64_t{e.size} + g_.cluster_bytes - 1) / g_.cluster_bytes;
    std::shared_ptr<const fat::Chain> chain = file_chain(e.cluster, needed, path);
    if (chain->clusters * g_.cluster_bytes < offset + n)
      fail(ErrorCategory::corrupt, "fat: {}: cluster chain ends after {} clusters, its {} bytes need {}", path,
           chain->clusters, e.size, needed);
    uint64_t run_start = 0;  // byte of the file where the run begins
    for (const fat::ClusterRun& run : chain->runs) {
      const uint64_t run_bytes = uint64_t{run.count} * g_.cluster_bytes;
      const uint64_t from = std::max(offset, run_start), to = std::min(offset + n, run_start + run_bytes);
      if (from < to)
        read_volume(*volume_, g_.cluster_offset(run.first) + (from - run_start), out.subspan(from - offset, to - from),
                    "fat");
      run_start += run_bytes;
      if (run_start >= offset + n) break;
    }
    return n;
  }

  std::string readlink(std::string_view path) override {
    std::lock_guard lock(mutex_);
    resolve(path);
    fail(ErrorCategory::usage, "fat: {}: not a symbolic link (FAT has none)", path);
  }

  // Reserved sectors (boot sector, FSInfo, backup boot sector), every FAT, the
  // fixed root directory, and every cluster the table does not list as free or bad.
  std::vector<ByteRange> used_ranges() override {
    std::lock_guard lock(mutex_);
    std::vector<ByteRange> ranges{{0, g_.data_offset()}};
    table_.for_each_allocated([&](uint32_t first, uint32_t count) {
      ranges.push_back({g_.cluster_offset(first), uint64_t{count} * g_.cluster_bytes});
    });
    const uint64_t end = std::min(g_.volume_bytes(), volume_->size());
    for (ByteRange& r : ranges) r.length = r.offset >= end ? 0 : std::min(r.length, end - r.offset);
    merge_ranges(ranges);
    return ranges;
  }

 private:
  // What a path resolves to: the root directory (which has no entry) or an entry.
  struct Node {
    Entry entry;
    bool root = false;
    bool is_directory() const { return root || entry.is_directory(); }
  };

  // The directory's cache key: its first cluster, 0 for the fixed FAT12/16 root.
  uint32_t directory_key(const Node& node) const {
    if (node.root) return g_.bits == 32 ? g_.root_cluster : 0;
    return node.entry.cluster;
  }

  FileStat stat_of(const Node& node) const {
    FileStat st;
    if (node.root) {
      st.type = FileType::directory;
      st.mode = 0755;
      st.inode = g_.bits == 32 ? g_.root_cluster : kFixedRootInode;
      return st;
    }
    const Entry& e = node.entry;
    const bool dir = e.is_directory();
    st.type = dir ? FileType::directory : FileType::regular;
    st.mode = dir ? 0755 : 0644;
    if (e.attr & fat::kAttrReadOnly) st.mode &= ~0222u;
    st.size = dir ? 0 : e.size;
    st.inode = dir ? e.cluster : kFileInodeBase + e.position / kEntrySize;
    st.mtime_ns = fat::fat_time_ns(e.write_date, e.write_time);
    st.ctime_ns = st.mtime_ns;  // FAT keeps no change time
    st.atime_ns = e.access_date ? fat::fat_time_ns(e.access_date, 0) : st.mtime_ns;
    if (e.create_date) st.btime_ns = fat::fat_time_ns(e.create_date, e.create_time, e.create_tenths);
    return st;
  }

  Node resolve(std::string_view path) {
    Node node{{}, true};
    std::vector<uint32_t> ancestors{directory_key(node)};
    std::string walked;
    for (const std::string& part : split_path(path, "fat")) {
      if (!node.is_directory()) fail(ErrorCategory::usage, "fat: {}: not a directory", walked);
      std::shared_ptr<const Directory> dir = directory(node, walked.empty() ? "/" : walked);
      walked += "/" + part;
      auto it = dir->index.find(fold_ascii_case(part));
      if (it == dir->index.end()) fail(ErrorCategory::not_found, "fat: {}: no such file or directory", walked);
      node = Node{dir->entries[it->second], false};
      if (node.entry.is_directory()) {
        if (node.entry.cluster == 0) fail(ErrorCategory::corrupt, "fat: {}: directory without a first cluster", walked);
        if (std::find(ancestors.begin(), ancestors.end(), node.entry.cluster) != ancestors.end())
          fail(ErrorCategory::corrupt, "fat: {}: directory at cluster {} is its own ancestor (a loop)", walked,
               node.entry.cluster);
        ancestors.push_back(node.entry.cluster);
      }
    }
    return node;
  }

  std::shared_ptr<const Directory> root_directory() { return directory(Node{{}, true}, "/"); }

  std::shared_ptr<const Directory> directory(const Node& node, std::string_view path) {
    const uint32_t key = directory_key(node);
    if (key == 0 && !node.root) fail(ErrorCategory::corrupt, "fat: {}: directory without a first cluster", path);
    if (auto* cached = directories_.find(key)) return *cached;
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> cluster_offsets;  // volume offset of each cluster of the directory
    if (key == 0) {
      bytes.resize(g_.root_dir_bytes());
      read_volume(*volume_, g_.root_dir_offset(), bytes, "fat");
    } else {
      const uint64_t max_clusters = std::max<uint64_t>(1, kMaxDirectoryBytes / g_.cluster_bytes);
      fat::Chain chain = table_.chain(key, max_clusters, std::string(path));
      if (chain.continues)
        fail(ErrorCategory::corrupt, "fat: {}: directory longer than 65536 entries (a loop in its chain?)", path);
      bytes.resize(chain.clusters * g_.cluster_bytes);
      uint64_t at = 0;
      for (const fat::ClusterRun& run : chain.runs) {
        const uint64_t n = uint64_t{run.count} * g_.cluster_bytes;
        read_volume(*volume_, g_.cluster_offset(run.first), std::span(bytes).subspan(at, n), "fat");
        for (uint32_t i = 0; i < run.count; ++i) cluster_offsets.push_back(g_.cluster_offset(run.first + i));
        at += n;
      }
    }
    auto dir = std::make_shared<Directory>(parse_directory(bytes, [&](uint64_t at) {
      if (cluster_offsets.empty()) return g_.root_dir_offset() + at;
      return cluster_offsets[at / g_.cluster_bytes] + at % g_.cluster_bytes;
    }));
    directories_.insert(key, dir);
    return dir;
  }

  template <typename Position>
  Directory parse_directory(std::span<const uint8_t> bytes, Position position) const {
    Directory dir;
    LongName long_name;
    for (size_t at = 0; at + kEntrySize <= bytes.size(); at += kEntrySize) {
      std::span<const uint8_t, kEntrySize> e = bytes.subspan(at).first<kEntrySize>();
      if (e[0] == fat::kEntryEnd) break;
      if (e[0] == fat::kEntryFree) {
        long_name.reset();
        continue;
      }
      const uint8_t attr = e[11];
      if ((attr & 0x3f) == fat::kAttrLongName) {
        long_name.add(e);
        continue;
      }
      if (attr & fat::kAttrVolumeId) {
        if (dir.label.empty() && !(attr & fat::kAttrDirectory)) dir.label = fat::volume_label(e);
        long_name.reset();
        continue;
      }
      const bool dot = std::memcmp(e.data(), ".          ", 11) == 0 || std::memcmp(e.data(), "..         ", 11) == 0;
      if (dot) {
        long_name.reset();
        continue;
      }
      Entry entry;
      entry.short_name = fat::short_name(e);
      entry.name = long_name.take(e).value_or(entry.short_name);
      long_name.reset();
      entry.attr = attr;
      entry.cluster = load_le16(e.data() + 26) | (g_.bits == 32 ? uint32_t{load_le16(e.data() + 20)} << 16 : 0);
      entry.size = load_le32(e.data() + 28);
      entry.create_tenths = e[13];
      entry.create_time = load_le16(e.data() + 14);
      entry.create_date = load_le16(e.data() + 16);
      entry.access_date = load_le16(e.data() + 18);
      entry.write_time = load_le16(e.data() + 22);
      entry.write_date = load_le16(e.data() + 24);
      entry.position = position(at);
      dir.index.emplace(fold_ascii_case(entry.name), dir.entries.size());
      dir.index.emplace(fold_ascii_case(entry.short_name), dir.entries.size());
      dir.entries.push_back(std::move(entry));
    }
    return dir;
  }

  std::shared_ptr<const fat::Chain> file_chain(uint32_t first, uint64_t clusters, std::string_view path) {
    const uint64_t key = uint64_t{first} << 32 | clusters;
    if (auto* cached = chains_.find(key)) return *cached;
    auto chain = std::make_shared<const fat::Chain>(table_.chain(first, clusters, std::string(path)));
    chains_.insert(key, chain);
    return chain;
  }

  std::shared_ptr<image::BlockDevice> volume_;
  fat::Geometry g_;
  mutable std::mutex mutex_;
  mutable fat::Table table_;
  mutable std::optional<uint64_t> used_bytes_;
  std::string label_;
  LruCache<uint32_t, std::shared_ptr<const Directory>> directories_{64};
  LruCache<uint64_t, std::shared_ptr<const fat::Chain>> chains_{16};
};

}  // namespace

std::unique_ptr<Filesystem> open_fat(std::shared_ptr<image::BlockDevice> volume) {
  std::vector<uint8_t> sector(512);
  if (volume->size() < sector.size()) fail(ErrorCategory::format, "fat: volume smaller than a boot sector");
  volume->read(0, sector);
  const fat::Geometry geometry = fat::parse_boot_sector(sector);
  return std::make_unique<FatFilesystem>(std::move(volume), geometry);
}

}  // namespace arche::volume
