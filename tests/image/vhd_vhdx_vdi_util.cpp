#include "tests/image/vhd_vhdx_vdi_util.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/bytes.h"
#include "core/file.h"
#include "image/format.h"
#include "tests/image/image_test_util.h"

namespace arche::test::foreign {

uint64_t make_source(const std::string& path, uint64_t size, uint64_t seed) {
  File f = File::open(path, OpenMode::create_truncate);
  f.truncate(size);
  std::mt19937_64 rng(seed);
  // Layout relative to the size, so any size >= 16 MiB works.
  struct Run {
    uint64_t offset, length;
    bool zeros;
  };
  const uint64_t m = 1 << 20;
  std::vector<Run> runs = {
      {0, 3 * m, false},                        // data from the start
      {3 * m, 2 * m, true},                     // a zero run written as data
      {7 * m + 512, 777777, false},             // unaligned data, inside a block
      {11 * m - 4096, 8192, false},             // straddles a 1 MiB boundary
      {size / 2, 1 * m, false},                 // middle
      {size / 2 + 1 * m, 64 * 1024, true},      // zeros right after data
      {size - 5 * 4096 - 100, 5 * 4096 + 100, false},  // the very end
  };
  for (const Run& r : runs) {
    std::vector<uint8_t> buf = r.zeros ? std::vector<uint8_t>(r.length, 0) : random_bytes(r.length, rng());
    f.write_all(r.offset, buf);
  }
  uint64_t nonzero = 0;
  std::vector<uint8_t> page(4096);
  for (uint64_t at = 0; at < size; at += page.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(page.size(), size - at));
    f.read_exact(at, std::span(page.data(), n));
    if (!all_zero(std::span(page.data(), n))) nonzero += n;
  }
  return nonzero;
}

CommandResult qemu_img(const std::vector<std::string>& args) {
  CommandResult r = arche::test::qemu_img(args);
  EXPECT_EQ(r.exit_code, 0) << "qemu-img " << args[0] << " failed: " << r.err << r.out;
  return r;
}

CommandResult qemu_io(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-io"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << "qemu-io failed: " << r.err << r.out;
  EXPECT_EQ(r.out.find("error"), std::string::npos) << r.out;
  return r;
}

uint64_t qemu_virtual_size(const std::string& path, const std::string& format) {
  CommandResult r = qemu_img({"info", "--output=json", "-f", format, path});
  return nlohmann::json::parse(r.out).at("virtual-size").get<uint64_t>();
}

uint64_t qemu_data_bytes(const std::string& path, const std::string& format) {
  CommandResult r = qemu_img({"map", "--output=json", "-f", format, path});
  uint64_t total = 0;
  for (const auto& e : nlohmann::json::parse(r.out))
    if (e.value("data", false)) total += e.at("length").get<uint64_t>();
  return total;
}

uint64_t allocated_bytes(const std::string& path) { return File::open(path, OpenMode::read_only).allocated_bytes(); }

bool files_equal(const std::string& a, const std::string& b) { return read_file(a) == read_file(b); }

std::vector<uint8_t> read_image(const std::string& path, const std::string& format) {
  return read_all_arche(path, format);
}

namespace {

void expect_same(image::BlockDevice& dev, const std::vector<uint8_t>& model, const std::string& when) {
  ASSERT_EQ(dev.size(), model.size()) << when;
  std::vector<uint8_t> got(model.size());
  dev.read(0, got);
  if (got == model) return;
  size_t first = 0;
  while (got[first] == model[first]) ++first;
  FAIL() << when << ": content differs from the model first at byte " << first;
}

}  // namespace

void random_write_exercise(const std::string& path, const std::string& format, uint64_t seed, int steps,
                           std::vector<uint8_t>& model) {
  image::OpenOptions o;
  o.format = format;
  o.writable = true;
  {
    auto dev = image::open_image(path, o);
    if (model.empty()) {
      model.resize(dev->size());
      dev->read(0, model);
    }
    const uint64_t size = dev->size();
    std::mt19937_64 rng(seed);
    for (int step = 0; step < steps; ++step) {
      const int what = static_cast<int>(rng() % 10);
      uint64_t length = 1 + rng() % (what < 2 ? 5 * 1024 * 1024 : 300 * 1024);
      if (rng() % 3 == 0) length = (length + 511) / 512 * 512;
      length = std::min(length, size);
      uint64_t offset = rng() % (size - length + 1);
      if (rng() % 2) offset = offset / 512 * 512;
      if (what < 7) {
        std::vector<uint8_t> data = random_bytes(length, rng());
        dev->write(offset, data);
        std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(offset));
      } else if (what < 9) {
        dev->write_zeroes(offset, length, what == 8);
        std::fill_n(model.begin() + static_cast<ptrdiff_t>(offset), length, 0);
      } else {
        // Discard: only whole granularity blocks are guaranteed to read zeros.
        const uint64_t g = dev->granularity();
        dev->discard(offset, length);
        uint64_t from = (offset + g - 1) / g * g;
        uint64_t to = offset + length == size ? size : (offset + length) / g * g;
        std::vector<uint8_t> after(length);
        dev->read(offset, after);
        for (uint64_t k = 0; k < length; ++k) {
          uint64_t at = offset + k;
          if (at >= from && at < to) {
            ASSERT_EQ(after[k], 0) << "discarded byte " << at << " is not zero";
          }
          model[at] = after[k];  // edges may or may not have changed
        }
      }
      if (step % 8 == 0) {
        expect_same(*dev, model, "step " + std::to_string(step));
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
    dev->flush();
    expect_same(*dev, model, "after flush");
  }
  o.writable = false;
  auto again = image::open_image(path, o);
  expect_same(*again, model, "after close and reopen");
}

void expect_clean_failure(const CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << "expected a failure, got success: " << r.out;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_GE(r.exit_code, 64) << "not an arche error exit code: " << r.err;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  EXPECT_EQ(err.find('\n'), std::string::npos) << "more than one line on stderr:\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr does not mention '" << needle << "': " << r.err;
}

std::vector<uint8_t> pread_file(const std::string& path, uint64_t offset, size_t length) {
  File f = File::open(path, OpenMode::read_only);
  std::vector<uint8_t> out(length);
  f.read_exact(offset, out);
  return out;
}

void pwrite_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data) {
  File f = File::open(path, OpenMode::read_write);
  f.write_all(offset, data);
}

}  // namespace arche::test::foreign
