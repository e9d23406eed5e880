#include "tests/jobs/job_test_util.h"

#include <sys/stat.h>

#include "backup/snapshot.h"

namespace arche::jobs::test {

void JobTest::SetUp() {
  RepositoryTest::SetUp();
  passphrase_file = dir.file("passphrase");
  const std::string p = backup::test::kPassphrase;
  arche::test::write_file(passphrase_file, {p.begin(), p.end()});
  ::chmod(passphrase_file.c_str(), 0600);
}

std::string JobTest::write_job(const std::string& body, const std::string& name) {
  const std::string text = "repository = \"" + repo + "\"\npassphrase-file = \"" + passphrase_file + "\"\n" + body;
  const std::string path = dir.file(name);
  arche::test::write_file(path, {text.begin(), text.end()});
  return path;
}

CommandResult JobTest::job(const std::vector<std::string>& args) {
  std::vector<std::string> a{"job"};
  a.insert(a.end(), args.begin(), args.end());
  return arche::test::arche(a);
}

std::string read_text(const std::string& path) {
  const std::vector<uint8_t> data = arche::test::read_file(path);
  return {data.begin(), data.end()};
}

std::vector<std::string> snapshot_names_of_host(const std::string& repo, const std::string& host) {
  std::vector<std::string> out;
  for (const backup::Snapshot& s : backup::load_snapshots(*backup::test::open_repo(repo)))
    if (s.host == host) out.push_back(s.name);
  return out;
}

}  // namespace arche::jobs::test
