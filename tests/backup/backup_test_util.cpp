#include "tests/backup/backup_test_util.h"

#include <cstdlib>
#include <fstream>

#include <boost/filesystem.hpp>

#include "backup/passphrase.h"

namespace arche::backup::test {

void use_passphrase(const std::string& passphrase) { ::setenv("ARCHE_PASSPHRASE", passphrase.c_str(), 1); }

CommandResult backup(const std::vector<std::string>& args) {
  std::vector<std::string> all{"backup"};
  all.insert(all.end(), args.begin(), args.end());
  return arche::test::arche(all);
}

CommandResult backup_ok(const std::vector<std::string>& args) {
  CommandResult r = backup(args);
  if (r.exit_code != 0) {
    std::string line = "arche backup";
    for (const auto& a : args) line += " " + a;
    ADD_FAILURE() << line << " exited " << r.exit_code << "\nstderr: " << r.err << "\nstdout: " << r.out;
  }
  return r;
}

void init_repo(const std::string& repo, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"init", repo, "--kdf-memory", "8M", "--kdf-ops", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  backup_ok(args);
}

std::unique_ptr<Repository> open_repo(const std::string& repo) {
  std::string pass = std::getenv("ARCHE_PASSPHRASE") ? std::getenv("ARCHE_PASSPHRASE") : kPassphrase;
  return Repository::open(repo, std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()));
}

void make_test_image(const std::string& path, const std::string& size, const std::string& marker) {
  CommandResult r = arche::test::run({std::string(ARCHE_SOURCE_DIR) + "/tests/backup/make_test_image.sh", path, size, marker});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void write_random_file(const std::string& path, size_t size, uint64_t seed) {
  arche::test::write_file(path, arche::test::random_bytes(size, seed));
}

bool same_content(const std::string& a, const std::string& b) {
  return arche::test::run({"cmp", "-s", a, b}).exit_code == 0;
}

std::vector<std::string> files_below(const std::string& dir) {
  std::vector<std::string> out;
  for (auto it = boost::filesystem::recursive_directory_iterator(dir); it != boost::filesystem::recursive_directory_iterator();
       ++it)
    if (boost::filesystem::is_regular_file(it->symlink_status())) out.push_back(it->path().string());
  return out;
}

bool file_contains(const std::string& path, const std::string& needle) {
  std::vector<uint8_t> data = arche::test::read_file(path);
  return std::search(data.begin(), data.end(), needle.begin(), needle.end()) != data.end();
}

}  // namespace arche::backup::test
