// What whoever steals the disk learns (acceptance 2), what a damaged repository
// does (acceptance 3), and bad input: truncated files, a full disk.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/filesystem.hpp>

#include "backup/repository.h"
#include "core/json.h"
#include "tests/backup/backup_test_util.h"

namespace fs = boost::filesystem;

namespace arche::backup::test {
namespace {

size_t lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class BackupIntegrity : public RepositoryTest {};

TEST_F(BackupIntegrity, NoPlaintextInTheRepositoryAndAWrongPassphraseIsOneClearError) {
  const std::string marker = "ARCHE-MARKER-Kundendaten-Mueller-GmbH-4711";
  const std::string name_marker = "geheime-Bilanz-2026";
  const std::string disk = dir.file("disk.raw");
  make_test_image(disk, "64M", marker);
  const std::string src = dir.file("files");
  fs::create_directories(src + "/" + name_marker);
  std::string text;
  for (int i = 0; i < 1000; ++i) text += marker + " Zeile " + std::to_string(i) + "\n";
  arche::test::write_file(src + "/" + name_marker + "/brief.txt", std::vector<uint8_t>(text.begin(), text.end()));
  arche::test::write_file(src + "/klein.txt", std::vector<uint8_t>(marker.begin(), marker.end()));
  ASSERT_TRUE(file_contains(disk, marker)) << "the fixture must contain the marker in the clear";
  backup_ok({"create", repo + "::secret", "--image", disk, src, "--tag", "Mueller"});

  size_t files = 0;
  for (const std::string& f : files_below(repo)) {
    ++files;
    for (const std::string& needle : {marker, std::string("Kundendaten"), name_marker, std::string("brief.txt"),
                                      std::string("klein.txt"), std::string("disk.raw"), std::string("Mueller"),
                                      std::string(kPassphrase)})
      EXPECT_FALSE(file_contains(f, needle)) << "'" << needle << "' in the clear in " << f;
  }
  EXPECT_GT(files, 4u);

  // A wrong passphrase: one line on stderr, the crypto exit code, nothing changed.
  use_passphrase("correct horse battery stapler");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list", repo}, {"restore", repo + "::secret", "--to", dir.file("x")},
        {"create", repo + "::more", src}, {"check", repo}}) {
    CommandResult r = backup(args);
    EXPECT_EQ(r.exit_code, 81) << args[0] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("wrong passphrase"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir.file("x")));
  EXPECT_TRUE(fs::is_empty(repo + "/locks"));
  use_passphrase();
  backup_ok({"restore", repo + "::secret", "--image", "disk.raw", "--to", dir.file("ok.raw")});
  EXPECT_TRUE(same_content(disk, dir.file("ok.raw")));
}

// Where the frame of the chunk holding `data` lives.
std::pair<std::string, uint64_t> locate(const std::string& repo, std::span<const uint8_t> data) {
  auto r = open_repo(repo);
  r->load_index(false);
  Id id = r->keys().chunk_id(data);
  auto where = r->index().find(id);
  if (!where) throw std::runtime_error("chunk not found");
  return {repo + "/" + pack_relative_path(r->index().pack_id(where->pack)), where->offset + where->length / 2};
}

void flip_bit(const std::string& path, uint64_t offset) {
  File f = File::open(path, OpenMode::read_write);
  uint8_t b;
  f.read_exact(offset, std::span(&b, 1));
  b ^= 0x08;
  f.write_all(offset, std::span(&b, 1));
}

TEST_F(BackupIntegrity, AFlippedBitIsFoundNamedAndNeverRestoredSilently) {
  // Two snapshots that share nothing: the damage hits one.
  const std::string victim_dir = dir.file("victim"), other_dir = dir.file("other");
  fs::create_directories(victim_dir + "/sub");
  fs::create_directories(other_dir);
  std::vector<uint8_t> victim_file = arche::test::random_bytes(100000, 21);
  arche::test::write_file(victim_dir + "/sub/lohnliste.dat", victim_file);
  write_random_file(other_dir + "/other.dat", 200000, 22);
  const std::string victim_image = dir.file("victim.raw"), other_image = dir.file("other.raw");
  write_random_file(victim_image, 3u << 20, 23);
  write_random_file(other_image, 2u << 20, 24);
  backup_ok({"create", repo + "::victim", "--image", victim_image, victim_dir});
  backup_ok({"create", repo + "::bystander", "--image", other_image, other_dir});
  backup_ok({"check", "--read-data", repo});

  std::vector<uint8_t> image_chunk(1u << 20);
  File::open(victim_image, OpenMode::read_only).read_exact(1u << 20, image_chunk);  // the second chunk
  auto [pack1, at1] = locate(repo, victim_file);
  auto [pack2, at2] = locate(repo, image_chunk);
  flip_bit(pack1, at1);
  flip_bit(pack2, at2);

  // Structure alone cannot see it; --read-data names chunk, snapshot, file and image range.
  CommandResult structure = backup({"check", repo});
  EXPECT_EQ(structure.exit_code, 0) << structure.out;
  CommandResult check = backup({"check", "--read-data", repo});
  EXPECT_EQ(check.exit_code, 2) << check.out << check.err;
  auto r = open_repo(repo);
  const std::string file_chunk = r->keys().chunk_id(victim_file).hex();
  const std::string image_chunk_id = r->keys().chunk_id(image_chunk).hex();
  EXPECT_NE(check.out.find("damaged chunk " + file_chunk), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("damaged chunk " + image_chunk_id), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("snapshot victim"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find(victim_dir + "/sub/lohnliste.dat"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("image victim.raw bytes 0x100000-0x200000"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("snapshot bystander"), std::string::npos) << "the other snapshot is not affected";
  Json j = Json::parse(backup({"check", "--read-data", repo, "--json"}).out);
  EXPECT_EQ(j["damaged-chunks"].size(), 2u);
  EXPECT_FALSE(j["ok"].get<bool>());

  // The unaffected snapshot restores exactly.
  backup_ok({"restore", repo + "::bystander", "--image", "other.raw", "--to", dir.file("o.raw")});
  EXPECT_TRUE(same_content(other_image, dir.file("o.raw")));
  backup_ok({"restore", repo + "::bystander", "--to", dir.file("o")});
  EXPECT_TRUE(same_content(other_dir + "/other.dat", dir.file("o") + other_dir + "/other.dat"));
  // The damaged one fails loudly and leaves no file that looks restored.
  CommandResult bad_image = backup({"restore", repo + "::victim", "--image", "victim.raw", "--to", dir.file("v.raw")});
  EXPECT_EQ(bad_image.exit_code, 80) << bad_image.err;
  EXPECT_NE(bad_image.err.find("authentication"), std::string::npos) << bad_image.err;
  EXPECT_FALSE(fs::exists(dir.file("v.raw")));
  for (const std::string& f : files_below(dir.path()))
    EXPECT_EQ(f.find("arche-tmp"), std::string::npos) << "temporary file left: " << f;
  // A file restore restores what it can, removes the damaged file and says so.
  CommandResult bad_files = backup({"restore", repo + "::victim", "--to", dir.file("v")});
  EXPECT_EQ(bad_files.exit_code, 80) << bad_files.err;
  EXPECT_NE(bad_files.err.find("lohnliste.dat not restored"), std::string::npos) << bad_files.err;
  EXPECT_FALSE(fs::exists(dir.file("v") + victim_dir + "/sub/lohnliste.dat"));
  EXPECT_TRUE(fs::is_directory(dir.file("v") + victim_dir + "/sub"));
}

TEST_F(BackupIntegrity, TruncatedAndDamagedRepositoryFilesGiveClearErrors) {
  const std::string data = dir.file("d.raw");
  write_random_file(data, 2u << 20, 31);
  backup_ok({"create", repo + "::a", "--image", data});
  backup_ok({"create", repo + "::b", "--image", dir.file("d.raw"), "--tag", "x", "--no-incremental"});

  // A damaged index file: check names it; repair rebuilds the index from the packs.
  const std::string index = repo + "/index/" + fs::directory_iterator(repo + "/index")->path().filename().string();
  ASSERT_EQ(::truncate(index.c_str(), 100), 0);
  CommandResult check = backup({"check", repo});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.out.find("index/"), std::string::npos) << check.out;
  CommandResult restore = backup({"restore", repo + "::a", "--image", "d.raw", "--to", dir.file("x")});
  EXPECT_NE(restore.exit_code, 0);
  EXPECT_EQ(lines(restore.err), 1u) << restore.err;
  backup_ok({"repair", "index", repo});
  backup_ok({"check", repo});
  backup_ok({"restore", repo + "::a", "--image", "d.raw", "--to", dir.file("x")});
  EXPECT_TRUE(same_content(data, dir.file("x")));

  // A truncated snapshot manifest: list shows the others and says which is damaged.
  std::vector<std::string> manifests;
  for (const auto& e : fs::directory_iterator(repo + "/snapshots")) manifests.push_back(e.path().string());
  ASSERT_EQ(manifests.size(), 2u);
  ASSERT_EQ(::truncate(manifests[0].c_str(), 30), 0);
  CommandResult list = backup({"list", repo});
  EXPECT_EQ(list.exit_code, 2);
  EXPECT_NE(list.err.find("snapshot"), std::string::npos);
  EXPECT_EQ(lines(list.out), 3u) << "header, the readable snapshot and the damaged one: " << list.out;
  EXPECT_NE(list.out.find("DAMAGED"), std::string::npos) << list.out;
  EXPECT_EQ(backup({"check", repo}).exit_code, 2);

  // A truncated pack: check names it, restoring from it fails with one line.
  std::string pack;
  for (const std::string& f : files_below(repo + "/data")) pack = f;
  ASSERT_FALSE(pack.empty());
  ASSERT_EQ(::truncate(pack.c_str(), static_cast<off_t>(fs::file_size(pack) / 2)), 0);
  check = backup({"check", repo});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_NE(check.out.find(fs::path(pack).filename().string().substr(0, 8)), std::string::npos) << check.out;
  // Prune refuses to act on a repository it cannot read completely.
  CommandResult prune = backup({"prune", repo, "--keep-last", "1"});
  EXPECT_NE(prune.exit_code, 0);
  EXPECT_EQ(lines(prune.err), 1u) << prune.err;
}

TEST_F(BackupIntegrity, AFullDiskFailsCleanlyAndDamagesNothing) {
  ARCHE_SKIP_UNLESS_ROOT();
  const std::string small_disk = dir.file("small");
  fs::create_directories(small_disk);
  ASSERT_EQ(::mount("tmpfs", small_disk.c_str(), "tmpfs", 0, "size=24m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{small_disk};
  const std::string small_repo = small_disk + "/repo";
  init_repo(small_repo);
  const std::string first = dir.file("first.raw"), big = dir.file("big.raw");
  write_random_file(first, 2u << 20, 41);
  write_random_file(big, 48u << 20, 42);
  backup_ok({"create", small_repo + "::first", "--image", first});

  CommandResult full = backup({"create", small_repo + "::big", "--image", big});
  EXPECT_EQ(full.exit_code, 83) << full.err;
  EXPECT_EQ(lines(full.err), 1u) << full.err;
  EXPECT_NE(full.err.find("No space left"), std::string::npos) << full.err;
  // Nothing half-written looks valid, nothing stored is damaged.
  for (const std::string& f : files_below(small_repo))
    EXPECT_EQ(fs::path(f).filename().string().find("arche-tmp"), std::string::npos) << f;
  CommandResult check = backup({"check", "--read-data", small_repo});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  backup_ok({"restore", small_repo + "::first", "--image", "first.raw", "--to", dir.file("first.out")});
  EXPECT_TRUE(same_content(first, dir.file("first.out")));
  CommandResult list = backup_ok({"list", small_repo, "--json"});
  EXPECT_EQ(Json::parse(list.out).size(), 1u);
  // With room again (a smaller image), backups work.
  write_random_file(big, 1u << 20, 43);
  backup_ok({"create", small_repo + "::after", "--image", big});
}

}  // namespace
}  // namespace arche::backup::test
