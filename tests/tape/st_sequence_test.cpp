// The st driver layer (tape/drive.h) against a fake device layer that records every
// call: the exact sequence of opens, fcntls, ioctls, reads and writes a real drive
// would see (no st module on the test machines), and how ENOSPC and status bits
// are taken.
#include <fcntl.h>

#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "tape/drive.h"
#include "tape/media.h"

namespace arche::tape {
namespace {

class FakeSt final : public TapeSyscalls {
 public:
  std::vector<std::string> calls;
  long gstat = GMT_ONLINE(-1L) | GMT_BOT(-1L);
  int fileno = 0;
  std::deque<ssize_t> write_results;       // next write() results; empty: the whole length
  std::deque<std::vector<uint8_t>> reads;  // next read() blocks; empty block: a filemark

  int open(const std::string& path, int flags) override {
    std::string mode = (flags & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_RDONLY";
    if (flags & O_NONBLOCK) mode += "|O_NONBLOCK";
    calls.push_back("open " + path + " " + mode);
    return 7;
  }
  int close(int fd) override {
    calls.push_back(fmt::format("close {}", fd));
    return 0;
  }
  int get_flags(int) override {
    calls.push_back("F_GETFL");
    return O_RDWR | O_NONBLOCK;
  }
  int set_flags(int, int flags) override {
    calls.push_back(std::string("F_SETFL") + ((flags & O_NONBLOCK) ? " O_NONBLOCK" : " blocking"));
    return 0;
  }
  ssize_t read(int, void* buffer, size_t length) override {
    calls.push_back(fmt::format("read {}", length));
    if (reads.empty()) return 0;
    std::vector<uint8_t> b = std::move(reads.front());
    reads.pop_front();
    if (b.size() > length) return -ENOMEM;
    std::copy(b.begin(), b.end(), static_cast<uint8_t*>(buffer));
    return static_cast<ssize_t>(b.size());
  }
  ssize_t write(int, const void*, size_t length) override {
    calls.push_back(fmt::format("write {}", length));
    if (write_results.empty()) return static_cast<ssize_t>(length);
    const ssize_t r = write_results.front();
    write_results.pop_front();
    return r;
  }
  int mt_op(int, const mtop& op) override {
    static const std::map<int, const char*> names = {{MTWEOF, "MTWEOF"}, {MTFSF, "MTFSF"}, {MTBSF, "MTBSF"},
                                                     {MTREW, "MTREW"},   {MTEOM, "MTEOM"}, {MTSETBLK, "MTSETBLK"}};
    auto it = names.find(op.mt_op);
    calls.push_back(fmt::format("{} {}", it == names.end() ? "MT?" : it->second, op.mt_count));
    return 0;
  }
  int mt_status(int, mtget& s) override {
    calls.push_back("MTIOCGET");
    std::memset(&s, 0, sizeof s);
    s.mt_gstat = gstat;
    s.mt_fileno = fileno;
    return 0;
  }
};

const std::vector<std::string> kOpenForWriting = {"open /dev/nst0 O_RDWR|O_NONBLOCK", "F_GETFL", "F_SETFL blocking",
                                                  "MTIOCGET", "MTSETBLK 0"};

TEST(StSequence, OpenClearsNonblockChecksStatusAndSetsVariableBlocks) {
  auto fake = std::make_shared<FakeSt>();
  { TapeDrive d(fake, "/dev/nst0", true); }
  std::vector<std::string> expected = kOpenForWriting;
  expected.push_back("close 7");
  EXPECT_EQ(fake->calls, expected);
}

TEST(StSequence, ReadOnlyOpen) {
  auto fake = std::make_shared<FakeSt>();
  { TapeDrive d(fake, "/dev/nst0", false); }
  EXPECT_EQ(fake->calls.front(), "open /dev/nst0 O_RDONLY|O_NONBLOCK");
}

TEST(StSequence, OfflineAndWriteProtectedAreRefusedAtOpen) {
  auto fake = std::make_shared<FakeSt>();
  fake->gstat = 0;  // no tape: O_NONBLOCK let open succeed, the status says why
  try {
    TapeDrive d(fake, "/dev/nst0", true);
    FAIL() << "opened an offline drive";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::not_found);
    EXPECT_NE(std::string(e.what()).find("no tape loaded"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fake->calls.back(), "close 7");
  fake->gstat = GMT_ONLINE(-1L) | GMT_WR_PROT(-1L);
  try {
    TapeDrive d(fake, "/dev/nst0", true);
    FAIL() << "opened a write-protected tape for writing";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::permission);
    EXPECT_NE(std::string(e.what()).find("write-protected"), std::string::npos);
  }
  EXPECT_NO_THROW(TapeDrive(fake, "/dev/nst0", false));  // reading it is fine
}

TEST(StSequence, LabelIsRewindOneRecordAndAFilemark) {
  auto fake = std::make_shared<FakeSt>();
  {
    TapeDrive d(fake, "/dev/nst0", true);
    MediaLabel l;
    l.tape = random_uuid();
    l.label = "A00001";
    l.pool = "weekly";
    l.record_size = 65536;
    write_label(d, l);
  }
  std::vector<std::string> expected = kOpenForWriting;
  for (const char* c : {"MTREW 1", "write 65536", "MTWEOF 1", "close 7"}) expected.push_back(c);
  EXPECT_EQ(fake->calls, expected);
}

TEST(StSequence, PositioningCommands) {
  auto fake = std::make_shared<FakeSt>();
  {
    TapeDrive d(fake, "/dev/nst0", false);
    fake->calls.clear();
    d.locate_file(4);  // arche file 4 = the driver's file 3: rewind, then over three filemarks
    d.locate_file(1);
    d.to_end_of_data();
    d.skip_files_back(1);
    d.skip_files_forward(2);
    fake->fileno = 5;
    EXPECT_EQ(d.status().file_number, 5);
  }
  EXPECT_EQ(fake->calls, (std::vector<std::string>{"MTREW 1", "MTFSF 3", "MTREW 1", "MTEOM 1", "MTBSF 1", "MTFSF 2",
                                                   "MTIOCGET", "close 7"}));
}

TEST(StSequence, EarlyWarningIsOneEnospcThenTheWriteGoesThrough) {
  auto fake = std::make_shared<FakeSt>();
  TapeDrive d(fake, "/dev/nst0", true);
  fake->calls.clear();
  EXPECT_FALSE(d.write_record(std::vector<uint8_t>(4096)));
  fake->write_results = {-ENOSPC};  // st: the write after entering the zone fails once, writing nothing
  EXPECT_TRUE(d.write_record(std::vector<uint8_t>(4096)));  // retried: written, and the caller knows
  EXPECT_TRUE(d.write_record(std::vector<uint8_t>(4096)));  // still in the zone
  EXPECT_EQ(fake->calls, (std::vector<std::string>{"write 4096", "write 4096", "write 4096", "write 4096"}));
  fake->write_results = {-ENOSPC};  // a second ENOSPC: the physical end
  try {
    d.write_record(std::vector<uint8_t>(4096));
    FAIL() << "wrote past the end";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::no_space);
  }
  fake->write_results = {100};  // a short write is an error, not silently accepted
  EXPECT_THROW(d.write_record(std::vector<uint8_t>(4096)), Error);
}

TEST(StSequence, ReadTellsFilemarkFromEndOfDataByStatus) {
  auto fake = std::make_shared<FakeSt>();
  TapeDrive d(fake, "/dev/nst0", false);
  fake->reads = {std::vector<uint8_t>(1000, 1), {}};
  std::vector<uint8_t> buffer(4096);
  ReadResult r = d.read_record(buffer);
  EXPECT_EQ(r.kind, ReadKind::record);
  EXPECT_EQ(r.length, 1000u);
  fake->gstat = GMT_ONLINE(-1L) | GMT_EOF(-1L);
  EXPECT_EQ(d.read_record(buffer).kind, ReadKind::filemark);
  fake->gstat = GMT_ONLINE(-1L) | GMT_EOD(-1L);
  EXPECT_EQ(d.read_record(buffer).kind, ReadKind::end_of_data);
  fake->reads = {std::vector<uint8_t>(8192)};
  EXPECT_THROW(d.read_record(buffer), Error);  // ENOMEM: a block larger than the buffer
}

}  // namespace
}  // namespace arche::tape
