// Fixtures shared by the VMDK and OVA tests: a raw source disk with data, runs of
// written zeros and holes; running qemu-img/qemu-io as referees; patching bytes.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/file.h"
#include "tests/common/test_util.h"

namespace arche::test {

// Runs a referee program and fails the test when it does not succeed.
inline CommandResult must(const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << " failed: " << r.err << r.out;
  return r;
}

// A raw disk of `size` bytes: random data, compressible text, a written run of
// zeros, holes, and data in the last sector (sizes that are not a grain multiple
// end in a short grain). `extra` offsets get 64 KiB of data each (e.g. across the
// 2 GiB boundary of split VMDKs).
inline void make_source(const std::string& path, uint64_t size, const std::vector<uint64_t>& extra = {}) {
  File f = File::open(path, OpenMode::create_truncate);
  f.truncate(size);
  auto put = [&](uint64_t offset, const std::vector<uint8_t>& data) {
    if (offset + data.size() <= size) f.write_all(offset, data);
  };
  put(1 << 20, random_bytes(3 << 20, 1));                       // 1 MiB: 3 MiB random
  put((4 << 20) + 4096, std::vector<uint8_t>(1 << 20, 0));      // a written run of zeros
  std::string text;
  while (text.size() < (2u << 20)) text += "Kundendaten Mueller GmbH, Rechnung 4711\n";
  put(6 << 20, std::vector<uint8_t>(text.begin(), text.end()));  // compressible
  put((9 << 20) + 777, random_bytes(10000, 2));                  // unaligned, inside one grain
  for (size_t i = 0; i < extra.size(); ++i) put(extra[i], random_bytes(64 << 10, 10 + i));
  put(size - 512, random_bytes(512, 3));                         // the last sector
}

// Bytes the file occupies on disk.
inline uint64_t allocated(const std::string& path) { return File::open(path, OpenMode::read_only).allocated_bytes(); }

inline void patch(const std::string& path, uint64_t offset, const std::vector<uint8_t>& bytes) {
  File::open(path, OpenMode::read_write).write_all(offset, bytes);
}

inline std::vector<uint8_t> le32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}
inline std::vector<uint8_t> le64(uint64_t v) {
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// One clear error: a non-zero exit, one line on stderr, no crash (signals give 128+).
#define EXPECT_ONE_CLEAR_ERROR(result)                                                        \
  do {                                                                                        \
    const auto& r_ = (result);                                                                \
    EXPECT_NE(r_.exit_code, 0) << r_.out;                                                     \
    EXPECT_LT(r_.exit_code, 128) << "crashed: " << r_.err;                                    \
    EXPECT_EQ(std::count(r_.err.begin(), r_.err.end(), '\n'), 1) << "stderr: " << r_.err;     \
    EXPECT_NE(r_.err.find("arche: "), std::string::npos) << r_.err;                           \
  } while (0)

}  // namespace arche::test
