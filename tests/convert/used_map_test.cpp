// The used-block map over made-up trees: placements (linear and striped LVs), the
// bytes outside partitions, LVM's own bytes, swap headers and the fallbacks.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "convert/used_map.h"
#include "core/error.h"
#include "volume/views.h"

namespace arche::convert {
namespace {

using volume::ByteRange;
using volume::VolumeInfo;
using volume::VolumeKind;

class FakeFs final : public volume::Filesystem {
 public:
  explicit FakeFs(std::vector<ByteRange> used) : used_(std::move(used)) {}
  std::string type() const override { return "ext4"; }
  uint64_t size_bytes() const override { return 0; }
  uint64_t used_bytes() const override { return 0; }
  volume::FileStat stat(std::string_view) override { return {}; }
  std::vector<volume::DirEntry> list(std::string_view) override { return {}; }
  size_t read(std::string_view, uint64_t, std::span<uint8_t>) override { return 0; }
  std::string readlink(std::string_view) override { return {}; }
  std::vector<ByteRange> used_ranges() override { return used_; }

 private:
  std::vector<ByteRange> used_;
};

class FakeTree final : public volume::Tree {
 public:
  std::vector<VolumeInfo> volumes_;
  std::vector<std::string> names_;
  std::map<size_t, std::unique_ptr<FakeFs>> fs_;
  const std::vector<VolumeInfo>& volumes() const override { return volumes_; }
  const std::vector<std::string>& disk_names() const override { return names_; }
  volume::Filesystem& filesystem(size_t index) override {
    auto it = fs_.find(index);
    if (it == fs_.end()) fail(ErrorCategory::corrupt, "volume {}: bad superblock", index);
    return *it->second;
  }
};

VolumeInfo vol(VolumeKind kind, uint32_t disk, std::string name, uint64_t offset, uint64_t size, std::string content) {
  VolumeInfo v;
  v.kind = kind;
  v.disk = disk;
  v.name = std::move(name);
  v.offset = offset;
  v.size = size;
  v.content = std::move(content);
  if (kind != VolumeKind::volume_group) v.placement.push_back({size, {{disk, offset}}, 0});
  return v;
}

constexpr uint64_t MiB1 = 1 << 20;

std::shared_ptr<image::BlockDevice> zeros(uint64_t size) {
  return std::make_shared<volume::MemoryDevice>(std::vector<uint8_t>(size), "disk");
}

TEST(NormaliseRanges, SortsClipsWidensAndMerges) {
  auto r = normalise_ranges({{5000, 100}, {0, 10}, {4096, 1000}, {9000, 99999}, {20000, 0}}, 10000);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].offset, 0u);
  EXPECT_EQ(r[0].length, 512u);
  EXPECT_EQ(r[1].offset, 4096u);
  EXPECT_EQ(r[1].length, 5120u - 4096u);  // 4096..5120: 5000+100 widened, merged with 4096+1000
  EXPECT_EQ(r[2].offset, 8704u);                                       // 9000 widened down
  EXPECT_EQ(r[2].offset + r[2].length, 10000u);                        // clipped to the end
}

TEST(UsedMap, PartitionedDiskKeepsEverythingOutsidePartitionsAndMapsTheRest) {
  FakeTree t;
  t.names_ = {"sda.raw"};
  const uint64_t disk = 64 * MiB1;
  t.volumes_.push_back(vol(VolumeKind::disk, 0, "", 0, disk, "gpt"));
  t.volumes_.push_back(vol(VolumeKind::partition, 0, "p1", 1 * MiB1, 16 * MiB1, "ext4"));
  t.volumes_.back().browsable = true;
  t.fs_[1] = std::make_unique<FakeFs>(std::vector<ByteRange>{{0, 4096}, {8 * MiB1, MiB1}});
  t.volumes_.push_back(vol(VolumeKind::partition, 0, "p2", 20 * MiB1, 8 * MiB1, ""));  // unknown: whole
  t.volumes_.push_back(vol(VolumeKind::partition, 0, "p3", 30 * MiB1, 8 * MiB1, "ext4"));
  t.volumes_.back().browsable = true;  // no FakeFs: opening fails, copied whole
  const UsedMap m = map_used_blocks(t, {zeros(disk)});
  ASSERT_EQ(m.volumes.size(), 4u);
  EXPECT_EQ(m.volumes[0].method, CopyMethod::layout);
  // Before p1, the gap between p1 and p2, p2 and p3, and after p3 to the end (the GPT backup).
  EXPECT_EQ(m.volumes[0].selected, 1 * MiB1 + 3 * MiB1 + 2 * MiB1 + (disk - 38 * MiB1));
  EXPECT_EQ(m.volumes[1].method, CopyMethod::used_ranges);
  EXPECT_EQ(m.volumes[1].selected, 4096 + MiB1);
  EXPECT_EQ(m.volumes[2].method, CopyMethod::whole);
  EXPECT_EQ(m.volumes[3].method, CopyMethod::whole);
  EXPECT_NE(m.volumes[3].reason.find("bad superblock"), std::string::npos) << m.volumes[3].reason;
  const std::vector<ByteRange>& r = m.disks[0].ranges;
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].offset, 0u);
  EXPECT_EQ(r[0].length, MiB1 + 4096);  // the head and p1's first block merge
  EXPECT_EQ(r[1].offset, 9 * MiB1);
  EXPECT_EQ(r[1].length, MiB1);
  EXPECT_EQ(r[2].offset, 17 * MiB1);  // the rest: gaps, p2 and p3 whole, the tail
  EXPECT_EQ(r[2].offset + r[2].length, disk);
}

TEST(UsedMap, StripedLvIsMappedStripeByStripeAndFreeExtentsAreSkipped) {
  FakeTree t;
  t.names_ = {"a.raw", "b.raw"};
  const uint64_t disk = 16 * MiB1;
  for (uint32_t d = 0; d < 2; ++d) {
    t.volumes_.push_back(vol(VolumeKind::disk, d, "", 0, disk, "LVM2_member"));
    t.volumes_.back().lvm_assembled = true;
    t.volumes_.back().lvm_keep = {{0, MiB1}};  // label + metadata
  }
  t.volumes_.push_back(vol(VolumeKind::volume_group, 0, "vg", 0, 0, "LVM2"));
  // An 8 MiB LV striped over both PVs, 64 KiB stripes, from 1 MiB on each.
  VolumeInfo lv = vol(VolumeKind::logical_volume, 0, "vg/lv", 0, 8 * MiB1, "ext4");
  lv.placement = {{8 * MiB1, {{0, MiB1}, {1, MiB1}}, 65536}};
  lv.browsable = true;
  t.volumes_.push_back(lv);
  // Used: the LV's bytes 0-96 KiB (stripe 0 on a, the first half of stripe 1 on b)
  // and 192-256 KiB (stripe 3, on b, row 1).
  t.fs_[3] = std::make_unique<FakeFs>(std::vector<ByteRange>{{0, 98304}, {196608, 65536}});
  const UsedMap m = map_used_blocks(t, {zeros(disk), zeros(disk)});
  ASSERT_EQ(m.disks[0].ranges.size(), 1u);
  EXPECT_EQ(m.disks[0].ranges[0].length, MiB1 + 65536);  // metadata + stripe 0
  ASSERT_EQ(m.disks[1].ranges.size(), 2u);
  EXPECT_EQ(m.disks[1].ranges[0].length, MiB1 + 32768);  // metadata + half of stripe 1
  EXPECT_EQ(m.disks[1].ranges[1].offset, MiB1 + 65536);  // stripe 3: row 1 on b
  EXPECT_EQ(m.disks[1].ranges[1].length, 65536u);
  EXPECT_EQ(m.volumes[0].method, CopyMethod::lvm);
}

TEST(UsedMap, SwapKeepsItsHeaderPageAndPvWithoutVgIsWhole) {
  FakeTree t;
  t.names_ = {"swap.raw", "pv.raw"};
  std::vector<uint8_t> swap(4 * MiB1, 0xaa);
  std::memcpy(swap.data() + 4096 - 10, "SWAPSPACE2", 10);
  t.volumes_.push_back(vol(VolumeKind::disk, 0, "", 0, swap.size(), "swap"));
  t.volumes_.push_back(vol(VolumeKind::disk, 1, "", 0, 2 * MiB1, "LVM2_member"));  // VG not assembled
  const UsedMap m = map_used_blocks(
      t, {std::make_shared<volume::MemoryDevice>(swap, "swap"), zeros(2 * MiB1)});
  EXPECT_EQ(m.volumes[0].method, CopyMethod::swap_header);
  EXPECT_EQ(m.disks[0].bytes(), 4096u);
  EXPECT_EQ(m.volumes[1].method, CopyMethod::whole);
  EXPECT_EQ(m.disks[1].bytes(), 2 * MiB1);
  // A swap area whose signature is gone is copied whole.
  std::memset(swap.data() + 4096 - 10, 0, 10);
  FakeTree u;
  u.names_ = {"swap.raw"};
  u.volumes_.push_back(t.volumes_[0]);
  const UsedMap n = map_used_blocks(u, {std::make_shared<volume::MemoryDevice>(swap, "swap")});
  EXPECT_EQ(n.volumes[0].method, CopyMethod::whole);
  EXPECT_EQ(n.disks[0].bytes(), swap.size());
}

}  // namespace
}  // namespace arche::convert
