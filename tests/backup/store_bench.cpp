// Throughput of the remote stores against rclone on the same servers: the sshd and
// the Ceph radosgw of the test fixtures (127.0.0.1), started and stopped here.
// Run by bench/store-remote.sh, which documents the rows; not a test (it asserts
// nothing about speed), but it does check that every byte came back.
//
//   store_bench WORK_DIR [MIB]      (MIB: the data size, default 1024)
//
// Two shapes of the same data: one object of MIB MiB (one writer, one reader), and
// MIB/16 objects of 16 MiB (a repository's packs) written and read by as many
// threads as the store's capabilities().parallelism, against rclone copyto of the
// one file and rclone copy of the directory with --transfers set to the same number.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "backup/crypto.h"
#include "backup/store_s3.h"
#include "backup/store_sftp.h"
#include "tests/backup/rgw_fixture.h"
#include "tests/backup/sshd_fixture.h"

namespace fs = std::filesystem;
using namespace arche;
using namespace arche::test;

namespace {

constexpr size_t kPack = 16u << 20;

struct Times {
  double wall = 0, cpu = 0;
};

double cpu_seconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

template <typename F>
Times timed(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds(RUSAGE_SELF);
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), cpu_seconds(RUSAGE_SELF) - cpu0};
}

// rclone's wall and CPU time, from /usr/bin/time.
Times rclone(std::vector<std::string> args, const std::string& work) {
  const std::string time_file = work + "/rclone.time";
  std::vector<std::string> argv = {"/usr/bin/time", "-f", "%e %U %S", "-o", time_file, "rclone"};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = run(argv);
  if (r.exit_code != 0) throw std::runtime_error("rclone failed: " + r.err);
  std::ifstream in(time_file);
  double wall = 0, user = 0, sys = 0;
  in >> wall >> user >> sys;
  return {wall, user + sys};
}

void row(const std::string& what, double mib, Times t) {
  std::printf("%-44s %8.1f MiB/s  wall %7.2f s  cpu %7.2f s\n", what.c_str(), mib / t.wall, t.wall, t.cpu);
  std::fflush(stdout);
}

void must_equal_files(const std::string& a, const std::string& b) {
  const CommandResult r = run({"cmp", a, b});
  if (r.exit_code != 0) throw std::runtime_error("data differs after the round trip: " + a + " " + b + ": " + r.out);
}

void put_file(backup::Store& store, const std::string& name, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> buffer(8u << 20);
  auto writer = store.create(name, backup::WriteMode::replace);
  while (in) {
    in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) writer->append(std::span(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  writer->commit();
}

void get_file(backup::Store& store, const std::string& name, const std::string& path) {
  auto reader = store.open(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<uint8_t> buffer(8u << 20);
  for (uint64_t offset = 0; offset < reader->size(); offset += buffer.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), reader->size() - offset));
    reader->read(offset, std::span(buffer.data(), n));
    out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(n));
  }
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

// Runs f(i) for i in [0, count) on `threads` threads.
template <typename F>
void parallel(size_t count, unsigned threads, F&& f) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      try {
        for (size_t i; (i = next++) < count;) f(i);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        failure = std::current_exception();
      }
    });
  }
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

std::string pack_name(size_t i) { return "packs/p" + std::to_string(1000 + i); }

// The four arche rows and the four rclone rows of one store. `remote` is rclone's
// name for the same place ("sftp:/path", "s3:bucket/prefix").
void bench_store(const std::string& label, backup::Store& store, const std::string& remote, const std::string& work,
                 double mib, size_t packs) {
  const unsigned threads = store.capabilities().parallelism;
  const std::string big = work + "/big.bin", back = work + "/big.back";
  const std::string dir = work + "/packs", dir_back = work + "/packs.back";

  row(label + " arche put 1 object", mib, timed([&] { put_file(store, "big.bin", big); }));
  row(label + " arche get 1 object", mib, timed([&] { get_file(store, "big.bin", back); }));
  must_equal_files(big, back);
  store.remove("big.bin");
  row(label + " rclone copyto 1 file", mib, rclone({"copyto", big, remote + "/big.bin"}, work));
  row(label + " rclone copyto back", mib, rclone({"copyto", remote + "/big.bin", back}, work));
  must_equal_files(big, back);
  rclone({"deletefile", remote + "/big.bin"}, work);

  const std::string n = std::to_string(threads);
  row(label + " arche put " + std::to_string(packs) + "x16MiB, " + n + " threads", mib, timed([&] {
        parallel(packs, threads, [&](size_t i) { put_file(store, pack_name(i), dir + "/p" + std::to_string(1000 + i)); });
      }));
  fs::create_directories(dir_back);
  row(label + " arche get " + std::to_string(packs) + "x16MiB, " + n + " threads", mib, timed([&] {
        parallel(packs, threads,
                 [&](size_t i) { get_file(store, pack_name(i), dir_back + "/p" + std::to_string(1000 + i)); });
      }));
  for (size_t i = 0; i < packs; ++i) {
    must_equal_files(dir + "/p" + std::to_string(1000 + i), dir_back + "/p" + std::to_string(1000 + i));
    store.remove(pack_name(i));
  }
  fs::remove_all(dir_back);
  row(label + " rclone copy dir, --transfers " + n, mib,
      rclone({"copy", "--transfers", n, dir, remote + "/packs"}, work));
  row(label + " rclone copy dir back, --transfers " + n, mib,
      rclone({"copy", "--transfers", n, remote + "/packs", dir_back}, work));
  for (size_t i = 0; i < packs; ++i) {
    must_equal_files(dir + "/p" + std::to_string(1000 + i), dir_back + "/p" + std::to_string(1000 + i));
  }
  rclone({"purge", remote + "/packs"}, work);
  fs::remove_all(dir_back);
  fs::remove(back);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: store_bench WORK_DIR [MIB]\n");
    return 2;
  }
  try {
    const std::string work = fs::absolute(argv[1]).string();
    const size_t mib = argc > 2 ? std::stoul(argv[2]) : 1024;
    const size_t packs = mib / 16;
    fs::create_directories(work + "/packs");

    // Random data (nothing compresses or deduplicates), the same bytes in both shapes.
    std::vector<uint8_t> piece(kPack);
    for (size_t i = 0; i < packs; ++i) {
      backup::random_fill(piece);
      write_file(work + "/packs/p" + std::to_string(1000 + i), piece);
    }
    {
      std::ofstream big(work + "/big.bin", std::ios::binary | std::ios::trunc);
      for (size_t i = 0; i < packs; ++i) {
        const auto data = read_file(work + "/packs/p" + std::to_string(1000 + i));
        big.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
      }
    }
    const double total = static_cast<double>(packs * 16);
    std::printf("%zu MiB of random data; files in the page cache; servers on 127.0.0.1\n", packs * 16);

    SshServer sshd;
    fs::create_directories(sshd.data_dir() + "/bench");
    // rclone reaches the same sshd with the same key and known_hosts (no shell: the
    // server runs internal-sftp only, so rclone's remote hashing is off).
    ::setenv("RCLONE_CONFIG_ARCHESFTP_TYPE", "sftp", 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_HOST", "127.0.0.1", 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_PORT", std::to_string(sshd.port()).c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_USER", sshd.user().c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_KEY_FILE", sshd.user_key_file().c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_KNOWN_HOSTS_FILE", sshd.known_hosts_file().c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_SHELL_TYPE", "none", 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_DISABLE_HASHCHECK", "true", 1);
    ::setenv("RCLONE_CONFIG_ARCHESFTP_USE_FSYNC", "true", 1);
    {
      backup::SftpStore store(sshd.url("bench"), sshd.options());
      bench_store("sftp", store, "archesftp:" + sshd.data_dir() + "/bench", work, total, packs);
    }

    RgwCluster& rgw = RgwCluster::shared();
    rgw.store("arche-bench");
    ::setenv("RCLONE_CONFIG_ARCHES3_TYPE", "s3", 1);
    ::setenv("RCLONE_CONFIG_ARCHES3_PROVIDER", "Ceph", 1);
    ::setenv("RCLONE_CONFIG_ARCHES3_ENDPOINT", ("http://" + rgw.endpoint()).c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHES3_ACCESS_KEY_ID", rgw.access_key().c_str(), 1);
    ::setenv("RCLONE_CONFIG_ARCHES3_SECRET_ACCESS_KEY", rgw.environment().at("AWS_SECRET_ACCESS_KEY").c_str(), 1);
    {
      backup::S3Store store(rgw.url("arche-bench", "bench"), rgw.credentials(), rgw.options());
      bench_store("s3", store, "arches3:arche-bench/bench", work, total, packs);
    }
    fs::remove_all(work);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
}
