// The acceptance tests of issue 14 through the arche CLI, on vtape libraries in
// temporary directories: spanning and restore from the tapes and the passphrase
// alone (1), the catalog rebuilt from the tapes (2), damaged records (3), early
// warning and refused tapes (4), no plaintext on tape (6).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "core/endian.h"
#include "core/file.h"
#include "core/json.h"
#include "tape/catalog.h"
#include "tests/backup/backup_test_util.h"

namespace arche::tape {
namespace {

using arche::test::CommandResult;
using arche::test::TempDir;
using backup::test::backup_ok;
using backup::test::file_contains;
using backup::test::init_repo;
using backup::test::same_content;
using backup::test::use_passphrase;
using backup::test::write_random_file;

constexpr const char* kMarker = "Kundendaten-Mueller-Geheim-4711";

struct Fixture {
  TempDir dir;
  std::string repo = dir.file("repo"), lib = dir.file("lib"), catalog = dir.file("catalog");
  std::string device() const { return "vtape:" + lib; }

  CommandResult tape(std::vector<std::string> args) const {
    args.insert(args.begin(), "tape");
    args.push_back("--catalog");
    args.push_back(catalog);
    return arche::test::arche(args);
  }
  CommandResult tape_ok(const std::vector<std::string>& args) const {
    CommandResult r = tape(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  }
  void label(const std::string& name, const std::string& pool, const std::string& capacity = "12M",
             const std::string& warning = "7M") const {
    tape_ok({"label", device(), "--pool", pool, "--label", name, "--capacity", capacity, "--early-warning", warning});
  }
  // Snapshot sN of its own source directory: 3 MiB of random data and a marker file.
  void snapshot(int n) const {
    const std::string src = dir.file("src" + std::to_string(n));
    std::filesystem::create_directories(src + "/sub");
    write_random_file(src + "/big.bin", 3u << 20, 100 + n);
    std::ofstream(src + "/sub/note.txt") << kMarker << " snapshot " << n << "\n";
    backup_ok({"create", repo + "::s" + std::to_string(n), src});
  }
  Catalog load_catalog() const {
    File f = File::open(catalog + "/catalog", OpenMode::read_only);
    std::vector<uint8_t> bytes(f.size());
    f.read_exact(0, bytes);
    return decode_catalog(bytes, "catalog");
  }
  // The file offset of record `record` of tape file `file` in a cartridge (docs/tape-format.md "Virtual tape").
  uint64_t record_offset(const std::string& cartridge, uint32_t file, uint64_t record) const {
    File f = File::open(lib + "/" + cartridge + ".vtape", OpenMode::read_only);
    uint64_t off = 64;
    uint32_t at_file = 1;
    uint64_t at_record = 0;
    while (off < f.size()) {
      uint8_t h[8];
      f.read_exact(off, h);
      const bool filemark = load_le32(h) == 0x4b4d4656;
      if (!filemark && at_file == file && at_record == record) return off + 8;
      if (filemark) {
        ++at_file;
        at_record = 0;
      } else {
        ++at_record;
      }
      off += 8 + load_le32(h + 4);
    }
    ADD_FAILURE() << "no record " << record << " in file " << file;
    return 0;
  }
};

void three_snapshots_on_tape(Fixture& f) {
  use_passphrase();
  init_repo(f.repo, {"--pack-size", "1M"});
  for (int n = 1; n <= 3; ++n) f.snapshot(n);
  for (const char* t : {"T1", "T2", "T3", "T4"}) f.label(t, "weekly");
  f.tape_ok({"backup", f.repo + "::s1", f.repo + "::s2", f.repo + "::s3", "--pool", "weekly", "--device", f.device(),
             "--archive-size", "2M"});
}

TEST(TapeAcceptance, ThreeSnapshotsSpanTapesAndRestoreFromTapesAndPassphraseAlone) {
  Fixture f;
  three_snapshots_on_tape(f);
  Catalog c = f.load_catalog();
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_GE(c.sets[0].tapes.size(), 2u) << "the tapes were meant to be small enough to span";
  // The first tape reached its early warning: closed, full, its catalog written, the next one asked for.
  EXPECT_TRUE(c.find_tape(c.sets[0].tapes[0])->full);
  CommandResult list = f.tape_ok({"list", "--json"});
  for (const char* s : {"\"s1\"", "\"s2\"", "\"s3\""}) EXPECT_NE(list.out.find(s), std::string::npos) << list.out;

  // No plaintext on any cartridge (acceptance 6).
  for (const auto& e : std::filesystem::directory_iterator(f.lib))
    EXPECT_FALSE(file_contains(e.path().string(), kMarker)) << e.path();

  std::filesystem::remove_all(f.repo);
  for (int n = 1; n <= 3; ++n) {
    const std::string s = "s" + std::to_string(n), target = f.dir.file("restored" + std::to_string(n));
    f.tape_ok({"restore", "--snapshot", s, "--device", f.device(), "--to", target});
    backup_ok({"restore", target + "::" + s, "--to", f.dir.file("out" + std::to_string(n))});
    const std::string src = f.dir.file("src" + std::to_string(n)), out = f.dir.file("out" + std::to_string(n)) + src;
    EXPECT_TRUE(same_content(src + "/big.bin", out + "/big.bin")) << s;
    EXPECT_TRUE(same_content(src + "/sub/note.txt", out + "/sub/note.txt")) << s;
    backup_ok({"check", target, "--read-data"});
  }

  // The catalog rebuilt from the tapes alone equals the one written (acceptance 2).
  const std::string rebuilt = f.dir.file("rebuilt");
  CommandResult r = arche::test::arche({"tape", "catalog", "rebuild", "--device", f.device(), "--catalog", rebuilt});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  File a = File::open(rebuilt + "/catalog", OpenMode::read_only);
  std::vector<uint8_t> bytes(a.size());
  a.read_exact(0, bytes);
  EXPECT_EQ(decode_catalog(bytes, "rebuilt"), c);
  EXPECT_TRUE(same_content(rebuilt + "/catalog", f.catalog + "/catalog"));
}

TEST(TapeAcceptance, DamagedRecordIsNamedAndSnapshotsThatDoNotNeedItStillRestore) {
  Fixture f;
  three_snapshots_on_tape(f);
  const Catalog c = f.load_catalog();
  // A pack s3 needs and s1 does not: damage a record in the middle of it. The
  // pack must cover the whole of the record after the one it starts in, in the
  // same tape file (the last pack of a snapshot can be small, and a pack can be
  // split across two tapes), or the damage would land in another object.
  const CatalogSnapshot& s1 = c.resolve_snapshot("s1");
  const CatalogSnapshot& s3 = c.resolve_snapshot("s3");
  const std::set<std::string> s1_packs(s1.packs.begin(), s1.packs.end());
  const auto places = c.objects_of_set(c.sets[0].uuid);
  std::string victim;
  for (const std::string& p : s3.packs) {
    const std::string name = "data/" + p.substr(0, 2) + "/" + p;
    if (s1_packs.count(p) || !places.count(name)) continue;
    const ObjectPlace& place = places.at(name);
    const uint64_t record_size = place.tape->record_size;
    if (place.object->offset + place.object->size > 3 * record_size && place.object->record + 2 < place.file->records)
      victim = name;
  }
  ASSERT_FALSE(victim.empty()) << "no pack of s3 alone spans three records";
  const ObjectPlace& at = places.at(victim);
  const uint64_t record = at.object->record + 1;  // wholly inside the pack
  const uint64_t offset = f.record_offset(at.tape->label, at.file->file, record) + 1000;
  {
    File cart = File::open(f.lib + "/" + at.tape->label + ".vtape", OpenMode::read_write);
    uint8_t b;
    cart.read_exact(offset, std::span(&b, 1));
    b ^= 0x55;
    cart.write_all(offset, std::span(&b, 1));
  }
  const std::string where =
      "tape " + at.tape->label + " file " + std::to_string(at.file->file) + " record " + std::to_string(record);

  std::filesystem::remove_all(f.repo);
  const std::string bad = f.dir.file("restored3");
  CommandResult r = f.tape({"restore", "--snapshot", "s3", "--device", f.device(), "--to", bad});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CRC32C"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(bad + "/snapshots/" + s3.id)) << "a snapshot with a damaged chunk looks whole";
  EXPECT_FALSE(std::filesystem::exists(bad + "/" + victim));

  const std::string good = f.dir.file("restored1");
  f.tape_ok({"restore", "--snapshot", "s1", "--device", f.device(), "--to", good});
  backup_ok({"restore", good + "::s1", "--to", f.dir.file("out1")});
  EXPECT_TRUE(same_content(f.dir.file("src1") + "/big.bin", f.dir.file("out1") + f.dir.file("src1") + "/big.bin"));

  CommandResult v = f.tape({"verify", "--device", f.device()});
  EXPECT_EQ(v.exit_code, 2) << v.out << v.err;
  EXPECT_NE(v.out.find(where), std::string::npos) << v.out;
}

TEST(TapeAcceptance, WriteProtectedOtherPoolAndUnexpiredTapesAreRefused) {
  Fixture f;
  use_passphrase();
  init_repo(f.repo, {"--pack-size", "1M"});
  f.snapshot(1);
  f.label("A1", "offsite");
  f.label("A2", "weekly");
  f.label("A3", "weekly", "64M", "8M");
  ASSERT_EQ(::chmod((f.lib + "/A2.vtape").c_str(), 0444), 0);
  CommandResult r = f.tape_ok({"backup", f.repo + "::s1", "--pool", "weekly", "--device", f.device()});
  EXPECT_NE(r.err.find("tape A1 refused: belongs to pool offsite, not weekly"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tape A2 refused: write-protected"), std::string::npos) << r.err;
  Catalog c = f.load_catalog();
  ASSERT_EQ(c.sets.size(), 1u);
  ASSERT_EQ(c.sets[0].tapes.size(), 1u);
  EXPECT_EQ(c.find_tape(c.sets[0].tapes[0])->label, "A3");

  // A new set finds no tape: A3's set is kept for 30 days.
  r = f.tape({"backup", f.repo + "::s1", "--pool", "weekly", "--device", f.device(), "--new-set"});
  EXPECT_EQ(r.exit_code, 83) << r.err;  // no_space
  EXPECT_NE(r.err.find("A3: holds media set " + c.sets[0].uuid + " until"), std::string::npos) << r.err;
  // Labelling over it is refused too.
  r = f.tape({"label", f.device(), "--pool", "weekly", "--label", "A3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("holds media set"), std::string::npos) << r.err;
  // Continuing the set appends to A3.
  f.snapshot(2);
  f.tape_ok({"backup", f.repo + "::s2", "--pool", "weekly", "--device", f.device()});
  c = f.load_catalog();
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_EQ(c.snapshots.size(), 2u);
  const std::string out = f.dir.file("r2");
  std::filesystem::remove_all(f.repo);
  f.tape_ok({"restore", "--snapshot", "s2", "--device", f.device(), "--to", out});
  backup_ok({"restore", out + "::s2", "--to", f.dir.file("o2")});
  EXPECT_TRUE(same_content(f.dir.file("src2") + "/big.bin", f.dir.file("o2") + f.dir.file("src2") + "/big.bin"));
}

TEST(TapeAcceptance, RestoringOneSmallFileReadsOnlyTheTapeFilesHoldingItsChunks) {
  Fixture f;
  three_snapshots_on_tape(f);
  std::filesystem::remove_all(f.repo);
  const Catalog c = f.load_catalog();
  uint64_t set_records = 0, set_files = 0;
  for (const CatalogTape& t : c.tapes)
    for (const CatalogFile& file : t.files) set_records += file.records, ++set_files;
  const std::string note = f.dir.file("src2") + "/sub/note.txt";
  CommandResult r = f.tape_ok(
      {"restore-file", "--snapshot", "s2", "--device", f.device(), note, "--to", f.dir.file("one"), "--json"});
  const Json j = Json::parse(r.out);
  std::cout << "restore-file read " << j["tape-files-read"] << " of " << set_files << " tape files, "
            << j["records-read"] << " of " << set_records << " records\n";
  EXPECT_EQ(j["tape-files-in-set"].get<uint64_t>(), set_files);
  EXPECT_LT(j["tape-files-read"].get<uint64_t>(), set_files);
  EXPECT_LT(j["records-read"].get<uint64_t>(), set_records * 3 / 4);
  EXPECT_TRUE(same_content(note, f.dir.file("one") + note));
  EXPECT_FALSE(std::filesystem::exists(f.dir.file("one") + f.dir.file("src2") + "/big.bin"));
}

// A qcow2 image of 6 MiB: random data with a hole and a run of zeros in it.
void make_qcow2(const std::string& raw, const std::string& qcow2) {
  std::vector<uint8_t> bytes = arche::test::random_bytes(6u << 20, 77);
  std::fill(bytes.begin() + (1 << 20), bytes.begin() + (2 << 20), 0);
  std::fill(bytes.begin() + (4 << 20), bytes.begin() + (4 << 20) + 65536, 0);
  arche::test::write_file(raw, bytes);
  CommandResult r = arche::test::run({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(TapeAcceptance, OneImageRestoresStraightToAFileFromTapeAlone) {
  if (!arche::test::have_program("qemu-img")) GTEST_SKIP() << "no qemu-img";
  Fixture f;
  use_passphrase();
  init_repo(f.repo, {"--pack-size", "1M"});
  f.snapshot(1);
  const std::string raw = f.dir.file("disk.raw"), qcow2 = f.dir.file("disk.qcow2");
  make_qcow2(raw, qcow2);
  backup_ok({"create", f.repo + "::vm", "--image", qcow2});
  for (const char* t : {"T1", "T2", "T3"}) f.label(t, "weekly");
  f.tape_ok({"backup", f.repo + "::s1", f.repo + "::vm", "--pool", "weekly", "--device", f.device(), "--archive-size",
             "2M"});
  std::filesystem::remove_all(f.repo);
  const Catalog c = f.load_catalog();
  uint64_t set_files = 0;
  for (const CatalogTape& t : c.tapes) set_files += t.files.size();

  const std::string out_raw = f.dir.file("out.raw");
  CommandResult r = f.tape_ok({"restore-image", "--snapshot", "vm", "--device", f.device(), "--to", out_raw, "--json"});
  const Json j = Json::parse(r.out);
  std::cout << "restore-image read " << j["tape-files-read"] << " of " << set_files << " tape files\n";
  EXPECT_EQ(j["image"].get<std::string>(), "disk.qcow2");
  EXPECT_EQ(j["tape-files-in-set"].get<uint64_t>(), set_files);
  EXPECT_LT(j["tape-files-read"].get<uint64_t>(), set_files) << "the file snapshot's archives were read too";
  EXPECT_TRUE(same_content(raw, out_raw));

  const std::string out_qcow2 = f.dir.file("out.qcow2");
  f.tape_ok({"restore-image", "--snapshot", "vm", "--image", "disk.qcow2", "--device", f.device(), "--to", out_qcow2,
             "-O", "qcow2"});
  CommandResult cmp = arche::test::run({"qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", qcow2, out_qcow2});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  CommandResult info = arche::test::run({"qemu-img", "check", out_qcow2});
  EXPECT_EQ(info.exit_code, 0) << info.out << info.err;

  CommandResult none = f.tape({"restore-image", "--snapshot", "vm", "--image", "other.img", "--device", f.device(),
                               "--to", f.dir.file("none.raw")});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("has no image 'other.img' (it has: disk.qcow2)"), std::string::npos) << none.err;

  // A damaged record inside one of the image's packs: a clear error naming it, no output file.
  const CatalogSnapshot& vm = c.resolve_snapshot("vm");
  const auto places = c.objects_of_set(vm.media_set);
  std::string victim;
  for (const std::string& p : vm.packs) {
    const std::string name = "data/" + p.substr(0, 2) + "/" + p;
    if (!places.count(name) ||
        std::find(vm.metadata_packs.begin(), vm.metadata_packs.end(), p) != vm.metadata_packs.end())
      continue;
    const ObjectPlace& place = places.at(name);
    if (place.object->offset + place.object->size > 3 * place.tape->record_size &&
        place.object->record + 2 < place.file->records)
      victim = name;
  }
  ASSERT_FALSE(victim.empty()) << "no data pack of the image spans three records";
  const ObjectPlace& at = places.at(victim);
  const uint64_t record = at.object->record + 1;
  const uint64_t offset = f.record_offset(at.tape->label, at.file->file, record) + 1000;
  {
    File cart = File::open(f.lib + "/" + at.tape->label + ".vtape", OpenMode::read_write);
    uint8_t b;
    cart.read_exact(offset, std::span(&b, 1));
    b ^= 0x55;
    cart.write_all(offset, std::span(&b, 1));
  }
  const std::string where =
      "tape " + at.tape->label + " file " + std::to_string(at.file->file) + " record " + std::to_string(record);
  const std::string damaged = f.dir.file("damaged.raw");
  CommandResult bad = f.tape({"restore-image", "--snapshot", "vm", "--device", f.device(), "--to", damaged});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find(where), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("CRC32C"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(damaged)) << "a restore with a damaged chunk left an output file";
  for (const auto& e : std::filesystem::directory_iterator(f.dir.path()))
    EXPECT_EQ(e.path().filename().string().find("damaged.raw"), std::string::npos) << e.path();
}

TEST(TapeAcceptance, StatusJson) {
  Fixture f;
  f.label("B1", "weekly", "64M", "8M");
  CommandResult r = f.tape_ok({"status", f.device(), "--json"});
  for (const char* key : {"\"label\":{", "\"pool\":\"weekly\"", "\"media-set\":null", "\"capacity\":67108864",
                          "\"in-catalog\":true", "\"write-protected\":false"})
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
}

}  // namespace
}  // namespace arche::tape
