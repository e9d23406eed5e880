// GPT and MBR as sfdisk and sgdisk write them (the referees), damaged copies, and
// crafted tables: backup GPT fallback, EBR chains that loop or leave the extended
// partition, hybrid and protective MBRs, whole-disk FAT/NTFS that look like an MBR.
#include <gtest/gtest.h>

#include "core/endian.h"
#include "core/file.h"
#include "core/json.h"
#include "core/error.h"
#include "tests/volume/volume_test_util.h"
#include "volume/partition_table.h"
#include "volume/probe.h"
#include "volume/tree.h"
#include "volume/views.h"

namespace arche::volume {
namespace {

using testing::open_raw;

void sh(const std::string& script) {
  test::CommandResult r = test::run({"sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << script << ": " << r.err;
}

Json sfdisk_json(const std::string& img) {
  test::CommandResult r = test::run({"sfdisk", "-J", img});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out)["partitiontable"];
}

void corrupt(const std::string& img, uint64_t offset, size_t n = 16) {
  File f = File::open(img, OpenMode::read_write);
  std::vector<uint8_t> junk(n, 0x5a);
  f.write_all(offset, junk);
}

bool has_note(const std::vector<std::string>& notes, const std::string& words) {
  for (const std::string& n : notes)
    if (n.find(words) != std::string::npos) return true;
  return false;
}

TEST(Gpt, AsSfdiskWritesIt) {
  test::TempDir dir;
  const std::string img = dir.file("gpt.img");
  sh("truncate -s 64M " + img +
     " && printf 'label: gpt\\nlabel-id: 0b2c6e8a-7a61-4e0a-8f2b-0c1d2e3f4a5b\\n"
     "size=8M, type=U, name=\"EFI System\"\\nsize=16M, type=L, name=\"Sch\\303\\266ne Daten\", "
     "uuid=11111111-2222-3333-4444-555555555555\\nsize=8M, type=S\\n' | sfdisk -q " + img);
  std::optional<PartitionTable> t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->scheme, PartitionScheme::gpt);
  EXPECT_EQ(t->disk_id, "0b2c6e8a-7a61-4e0a-8f2b-0c1d2e3f4a5b");
  EXPECT_TRUE(t->notes.empty());
  Json ref = sfdisk_json(img);
  ASSERT_EQ(t->partitions.size(), ref["partitions"].size());
  for (size_t i = 0; i < t->partitions.size(); ++i) {
    const Partition& p = t->partitions[i];
    const Json& r = ref["partitions"][i];
    EXPECT_EQ(p.number, i + 1);
    EXPECT_EQ(p.offset, r["start"].get<uint64_t>() * 512);
    EXPECT_EQ(p.size, r["size"].get<uint64_t>() * 512);
    std::string type = r["type"];
    for (char& c : type) c = static_cast<char>(std::tolower(c));
    EXPECT_EQ(p.type_id, type);
    std::string uuid = r["uuid"];
    for (char& c : uuid) c = static_cast<char>(std::tolower(c));
    EXPECT_EQ(p.uuid, uuid);
    EXPECT_EQ(p.name, r.value("name", ""));
  }
  EXPECT_EQ(t->partitions[0].type_name, "EFI System");
  EXPECT_EQ(t->partitions[1].name, "Schöne Daten");
  EXPECT_EQ(t->partitions[1].uuid, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(t->partitions[2].type_name, "Linux swap");
}

TEST(Gpt, FourKibibyteSectors) {
  ARCHE_SKIP_UNLESS_ROOT();  // sfdisk writes 4 KiB-sector tables onto a loop device with 4 KiB sectors
  test::TempDir dir;
  const std::string img = dir.file("g4.img");
  sh("truncate -s 64M " + img + " && l=$(losetup -f --show -b 4096 " + img +
     ") && printf 'label: gpt\\nsize=8M, type=L, name=\"vier\"\\n' | sfdisk -q $l 2>/dev/null; losetup -d $l");
  // (sfdisk then fails to make the kernel re-read the loop device's table: not our concern)
  std::optional<PartitionTable> t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sector_size, 4096u);
  ASSERT_EQ(t->partitions.size(), 1u);
  EXPECT_EQ(t->partitions[0].name, "vier");
  EXPECT_EQ(t->partitions[0].size, 8u << 20);
  EXPECT_EQ(t->partitions[0].offset % 4096, 0u);
}

TEST(Gpt, DamagedPrimaryIsReadFromTheBackup) {
  test::TempDir dir;
  const std::string img = dir.file("gpt.img");
  sh("truncate -s 32M " + img + " && printf 'label: gpt\\nsize=8M, type=L\\nsize=8M, type=L\\n' | sfdisk -q " + img);
  const std::vector<uint8_t> pristine = test::read_file(img);
  const uint64_t last = 32 * 1024 * 1024 - 512;

  corrupt(img, 512 + 24);  // the primary header (its CRC no longer matches)
  std::optional<PartitionTable> t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->partitions.size(), 2u);
  EXPECT_TRUE(has_note(t->notes, "primary GPT is damaged")) << t->notes.size();

  test::write_file(img, pristine);
  corrupt(img, 1024 + 20);  // the primary entry array
  t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->partitions.size(), 2u);
  EXPECT_TRUE(has_note(t->notes, "entry array at LBA 2 fails its CRC32"));

  test::write_file(img, pristine);
  corrupt(img, last + 24);  // only the backup
  t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_TRUE(has_note(t->notes, "backup GPT header is damaged"));

  corrupt(img, 512 + 24);  // both
  try {
    read_partition_table(*open_raw(img));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::corrupt);
    EXPECT_NE(std::string(e.what()).find("backup damaged"), std::string::npos) << e.what();
  }
  // The tree reports it on the disk and goes on.
  std::unique_ptr<Tree> tree = explore({{"gpt.img", open_raw(img)}});
  ASSERT_EQ(tree->volumes().size(), 1u);
  EXPECT_TRUE(has_note(tree->volumes()[0].notes, "GPT"));
}

TEST(Gpt, HybridMbrIsReadAsGpt) {
  if (!test::have_program("sgdisk")) GTEST_SKIP() << "sgdisk (gdisk) is not installed";
  test::TempDir dir;
  const std::string img = dir.file("hybrid.img");
  sh("truncate -s 32M " + img + " && sgdisk -o -n 1:2048:+8M -t 1:0700 -n 2:0:+8M -t 2:8300 " + img +
     " >/dev/null && sgdisk -h 1 " + img + " >/dev/null");
  std::optional<PartitionTable> t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->scheme, PartitionScheme::gpt);
  EXPECT_EQ(t->partitions.size(), 2u);
  EXPECT_EQ(t->partitions[0].type_name, "Microsoft basic data");
  EXPECT_TRUE(has_note(t->notes, "hybrid MBR"));
}

TEST(Mbr, ExtendedAndLogicalPartitionsAsSfdiskWritesThem) {
  test::TempDir dir;
  const std::string img = dir.file("mbr.img");
  sh("truncate -s 64M " + img +
     " && printf 'label: dos\\nlabel-id: 0x12345678\\nsize=8M, type=83, bootable\\ntype=5\\nsize=8M, type=7\\n"
     "size=8M, type=82\\nsize=8M, type=8e\\n' | sfdisk -q " + img);
  std::optional<PartitionTable> t = read_partition_table(*open_raw(img));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->scheme, PartitionScheme::mbr);
  EXPECT_EQ(t->disk_id, "0x12345678");
  Json ref = sfdisk_json(img);
  ASSERT_EQ(t->partitions.size(), ref["partitions"].size());
  const unsigned numbers[] = {1, 2, 5, 6, 7};
  for (size_t i = 0; i < t->partitions.size(); ++i) {
    const Partition& p = t->partitions[i];
    const Json& r = ref["partitions"][i];
    EXPECT_EQ(p.number, numbers[i]);
    EXPECT_EQ(p.offset, r["start"].get<uint64_t>() * 512) << p.number;
    EXPECT_EQ(p.size, r["size"].get<uint64_t>() * 512) << p.number;
    EXPECT_EQ(p.type_id, fmt::format("0x{:02x}", std::stoi(r["type"].get<std::string>(), nullptr, 16))) << p.number;
  }
  EXPECT_EQ(t->partitions[0].attributes, 0x80u);
  EXPECT_TRUE(t->partitions[1].extended);
  EXPECT_TRUE(t->partitions[2].logical);
  EXPECT_EQ(t->partitions[2].uuid, "12345678-05");
  EXPECT_EQ(t->partitions[3].type_name, "Linux swap / Solaris");
}

TEST(Mbr, AnEbrChainThatLoopsOrLeavesItsPartitionStops) {
  test::TempDir dir;
  const std::string img = dir.file("mbr.img");
  sh("truncate -s 64M " + img +
     " && printf 'label: dos\\ntype=5\\nsize=8M, type=83\\nsize=8M, type=83\\nsize=8M, type=83\\n' | sfdisk -q " + img);
  std::optional<PartitionTable> good = read_partition_table(*open_raw(img));
  ASSERT_TRUE(good);
  ASSERT_EQ(good->partitions.size(), 4u);
  const uint64_t ext = good->partitions[0].offset / 512;
  // The second EBR: the one whose first entry describes p6.
  const uint64_t second_ebr = good->partitions[2].offset / 512 - 2048;
  std::vector<uint8_t> bytes = test::read_file(img);
  // Its link (entry 2) back to the first EBR: a loop.
  store_le32(bytes.data() + second_ebr * 512 + 446 + 16 + 8, 0);
  std::optional<PartitionTable> t = read_mbr(*std::make_shared<MemoryDevice>(bytes));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->partitions.size(), 3u);  // p1 (extended), p5, p6
  EXPECT_TRUE(has_note(t->notes, "loops back"));
  // A link far outside the extended partition.
  store_le32(bytes.data() + second_ebr * 512 + 446 + 16 + 8, 0x7fffffff - static_cast<uint32_t>(ext));
  t = read_mbr(*std::make_shared<MemoryDevice>(bytes));
  ASSERT_TRUE(t);
  EXPECT_TRUE(has_note(t->notes, "outside the extended partition"));
}

TEST(Mbr, EntriesBeyondTheDiskAreCutAndBootCodeIsNotATable) {
  std::vector<uint8_t> bytes(8 << 20, 0);
  bytes[510] = 0x55;
  bytes[511] = 0xaa;
  uint8_t* e = bytes.data() + 446;
  e[4] = 0x83;
  store_le32(e + 8, 2048);
  store_le32(e + 12, 1 << 20);  // 512 MiB on an 8 MiB disk
  std::optional<PartitionTable> t = read_mbr(*std::make_shared<MemoryDevice>(bytes));
  ASSERT_TRUE(t);
  ASSERT_EQ(t->partitions.size(), 1u);
  EXPECT_EQ(t->partitions[0].size, (8u << 20) - 2048 * 512);
  EXPECT_TRUE(has_note(t->partitions[0].notes, "beyond the end of the disk"));
  e[0] = 0x33;  // a status byte no MBR has: boot code, not a table
  EXPECT_FALSE(read_mbr(*std::make_shared<MemoryDevice>(bytes)));
}

TEST(Probe, WholeDiskFatAndNtfsAreFileSystemsNotMbrs) {
  test::TempDir dir;
  const std::string fat = dir.file("fat.img"), ntfs = dir.file("ntfs.img");
  sh("truncate -s 64M " + fat + " && mkfs.vfat -F 32 -n GANZ " + fat + " >/dev/null");
  sh("truncate -s 64M " + ntfs + " && mkntfs -q -F -Q -L Ganz " + ntfs + " >/dev/null 2>&1");
  // Both boot sectors end in 0x55AA, as an MBR does.
  for (const std::string& img : {fat, ntfs}) {
    std::vector<uint8_t> head = test::read_file(img);
    EXPECT_EQ(head[510], 0x55);
    EXPECT_EQ(head[511], 0xaa);
  }
  Content c = identify(*open_raw(fat));
  EXPECT_EQ(c.kind, ContentKind::filesystem);
  EXPECT_EQ(c.type, "fat32");
  EXPECT_EQ(c.label, "GANZ");
  c = identify(*open_raw(ntfs));
  EXPECT_EQ(c.type, "ntfs");
  std::unique_ptr<Tree> tree = explore({{"ntfs.img", open_raw(ntfs)}});
  ASSERT_EQ(tree->volumes().size(), 1u);
  EXPECT_TRUE(tree->volumes()[0].browsable);
  EXPECT_EQ(tree->filesystem(0).label(), "Ganz");
  EXPECT_TRUE(tree->filesystem(0).list("/").empty());
}

TEST(Probe, NamesWhatItDoesNotRead) {
  test::TempDir dir;
  struct Case {
    const char* name;
    const char* make;
    const char* type;
  };
  const Case cases[] = {
      {"btrfs", "mkfs.btrfs -q -L bt", "btrfs"},
      {"swap", "mkswap -L sw", "swap"},
      {"xfs", "mkfs.xfs -q -L x", "xfs"},
      {"ext3", "mkfs.ext3 -q", "ext3"},
      {"ext2", "mkfs.ext2 -q", "ext2"},
  };
  for (const Case& k : cases) {
    if (!test::have_program(std::string(k.make).substr(0, std::string(k.make).find(' ')))) continue;
    const std::string img = dir.file(k.name);
    sh("truncate -s 320M " + img + " && " + k.make + " " + img + " >/dev/null 2>&1");
    Content c = identify(*open_raw(img));
    EXPECT_EQ(c.type, k.type) << k.name;
  }
  EXPECT_EQ(identify(*open_raw(dir.file("btrfs"))).label, "bt");
  EXPECT_FALSE(identify(*open_raw(dir.file("btrfs"))).readable);
  EXPECT_EQ(identify(*open_raw(dir.file("swap"))).label, "sw");
  std::vector<uint8_t> zeros(1 << 20, 0);
  EXPECT_EQ(identify(*std::make_shared<MemoryDevice>(zeros)).kind, ContentKind::empty);
}

}  // namespace
}  // namespace arche::volume
