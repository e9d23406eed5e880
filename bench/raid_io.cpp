// The I/O driver of bench/raid.sh: the same requests through any image arche opens
// (a single raw image, or mirror:A+B), so the two are compared on equal terms.
//
//   raid_io seq TARGET BYTES               sequential 1 MiB writes, then a flush
//   raid_io rand TARGET BYTES COUNT        COUNT random 4 KiB writes within BYTES,
//                                          a flush every 64 (a guest's journal commits)
//   raid_io hot TARGET REGION HOT           forever: 4 KiB writes into HOT regions of
//                                          REGION bytes, a flush every 64 (to be killed)
//   raid_io checksums                      CRC32C vs xxh3 on 4 KiB blocks
//
// Prints "seconds=S" (wall time of the requests and the final flush).
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "image/format.h"
#include "image/mirror/checksum.h"

using namespace arche;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<image::BlockDevice> open_rw(const std::string& target) {
  image::OpenOptions o;
  o.writable = true;
  return image::open_image(target, o);
}

int usage() {
  std::fprintf(stderr, "usage: raid_io seq|rand|hot|checksums ...\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "checksums") {
      std::vector<uint8_t> block(4096);
      std::mt19937_64 rng(1);
      for (auto& b : block) b = static_cast<uint8_t>(rng());
      for (auto kind : {image::mirror::ChecksumKind::crc32c, image::mirror::ChecksumKind::xxh3}) {
        const int n = 500000;
        uint32_t sink = 0;
        double t0 = now();
        for (int i = 0; i < n; ++i) {
          block[i % 4096] ^= 1;
          sink ^= image::mirror::block_checksum(kind, block);
        }
        double t = now() - t0;
        std::printf("%s %.2f GB/s (%u)\n", image::mirror::to_string(kind), n * 4096.0 / t / 1e9, sink & 1);
      }
      return 0;
    }
    if ((mode == "seq" && argc == 4) || (mode == "rand" && argc == 5)) {
      auto dev = open_rw(argv[2]);
      const uint64_t bytes = std::stoull(argv[3]);
      std::vector<uint8_t> buf(mode == "seq" ? 1 << 20 : 4096);
      std::mt19937_64 rng(7);
      for (auto& b : buf) b = static_cast<uint8_t>(rng() | 1);
      double t0 = now();
      if (mode == "seq") {
        for (uint64_t off = 0; off < bytes; off += buf.size()) dev->write(off, buf);
      } else {
        const uint64_t count = std::stoull(argv[4]), blocks = bytes / 4096;
        for (uint64_t i = 0; i < count; ++i) {
          buf[i % 4096] ^= 0x5a;
          dev->write((rng() % blocks) * 4096, buf);
          if (i % 64 == 63) dev->flush();
        }
      }
      dev->flush();
      std::printf("seconds=%.3f\n", now() - t0);
      return 0;
    }
    if (mode == "hot" && argc == 5) {
      auto dev = open_rw(argv[2]);
      const uint64_t region = std::stoull(argv[3]), hot = std::stoull(argv[4]);
      std::vector<uint8_t> buf(4096, 0x42);
      std::mt19937_64 rng(3);
      std::printf("writing\n");
      std::fflush(stdout);
      for (uint64_t i = 0;; ++i) {
        dev->write((rng() % hot) * region + (rng() % (region / 4096)) * 4096, buf);
        if (i % 64 == 63) dev->flush();
      }
    }
    return usage();
  } catch (const Error& e) {
    std::fprintf(stderr, "raid_io: %s\n", e.what());
    return exit_code(e.category());
  }
}
