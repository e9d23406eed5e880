// The sandbox: the child cannot open files or sockets (the filter kills it and
// the parent says so), a crashing or hanging reader is one clear error, the
// parent carries on, and the answers equal those of the in-process tree.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include "core/error.h"
#include "core/file.h"
#include "tests/volume/volume_test_util.h"
#include "volume/sandbox.h"
#include "volume/sandbox_protocol.h"
#include "volume/tree.h"
#include "volume/views.h"

namespace arche::volume {
namespace {

using testing::open_raw;

// What the test hook does inside the child, chosen by the request's payload.
void hostile_hook(std::string_view what) {
  if (what == "open") {
    int fd = ::open("/etc/passwd", O_RDONLY);  // killed here by the filter
    if (fd >= 0) fail(ErrorCategory::internal, "opened /etc/passwd");
  } else if (what == "socket") {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0) fail(ErrorCategory::internal, "made a socket");
  } else if (what == "exec") {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, nullptr);
  } else if (what == "crash" || what == "opened CRASHME") {
    std::raise(SIGSEGV);
  } else if (what == "hang") {
    while (true) {
    }
  } else if (what == "read-forever") {
    // A reader in a loop that keeps reading the disk (block reads, straight on the
    // child's socket): progress of a sort, so only the request limit ends it.
    while (true) {
      ByteWriter w;
      w.le32(0);
      w.le64(0);
      w.le32(512);
      sandbox::send_message(3, sandbox::kBlockRead, w.buffer());
      sandbox::receive_message(3);
    }
  } else if (what == "fine") {
    return;
  }
}

std::string failure(Sandbox& s, const std::string& what) {
  try {
    s.test_request(what);
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::corrupt) << e.what();
    return e.what();
  }
  return "no error";
}

std::unique_ptr<Sandbox> hostile(unsigned timeout = 300) {
  SandboxOptions o;
  o.test_hook = hostile_hook;
  o.timeout_seconds = timeout;
  return Sandbox::start(o);
}

TEST(Sandbox, TheChildCannotOpenFilesOrSockets) {
  for (const char* what : {"open", "socket", "exec"}) {
    SCOPED_TRACE(what);
    std::unique_ptr<Sandbox> s = hostile();
    s->test_request("fine");  // the hook itself runs
    const std::string message = failure(*s, what);
    EXPECT_NE(message.find("seccomp filter"), std::string::npos) << message;
    // Every later call gets the same error; nothing hangs.
    EXPECT_EQ(failure(*s, "fine"), message);
  }
}

TEST(Sandbox, ACrashOrAHangIsOneErrorAndTheParentGoesOn) {
  std::unique_ptr<Sandbox> s = hostile();
  const std::string crash = failure(*s, "crash");
  EXPECT_NE(crash.find("crashed (SEGV)"), std::string::npos) << crash;

  std::unique_ptr<Sandbox> h = hostile(2);
  const auto start = std::chrono::steady_clock::now();
  const std::string hang = failure(*h, "hang");
  EXPECT_NE(hang.find("did not answer within 2 s"), std::string::npos) << hang;
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  // A new sandbox works as if nothing had happened.
  std::vector<uint8_t> zeros(1 << 20, 0);
  std::unique_ptr<Tree> tree = Sandbox::start()->explore({{"zeros", std::make_shared<MemoryDevice>(zeros)}});
  ASSERT_EQ(tree->volumes().size(), 1u);
  EXPECT_EQ(tree->volumes()[0].content, "");
}

TEST(Sandbox, ARequestThatReadsForeverIsStoppedAtTheLimit) {
  SandboxOptions o;
  o.test_hook = hostile_hook;
  o.request_limit_seconds = 2;
  std::unique_ptr<Sandbox> s = Sandbox::start(o);
  std::vector<uint8_t> zeros(1 << 20, 0);
  s->explore({{"zeros", std::make_shared<MemoryDevice>(zeros)}});
  const std::string message = failure(*s, "read-forever");
  EXPECT_NE(message.find("took more than 2 s"), std::string::npos) << message;
}

TEST(Sandbox, TestRequestsAreRefusedWithoutAHook) {
  std::unique_ptr<Sandbox> s = Sandbox::start();
  try {
    s->test_request("open");
    ADD_FAILURE() << "the request ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::unsupported);
    EXPECT_NE(std::string(e.what()).find("test requests are disabled"), std::string::npos);
  }
}

// A disk image whose file system makes the reader crash. The crash is injected:
// the child runs the test hook after opening a file system, and the hook crashes
// for the label CRASHME (no crash of libext2fs or libntfs-3g is known to us; the
// containment is what is tested).
TEST(Sandbox, AFileSystemThatCrashesTheReaderIsOneClearError) {
  test::TempDir dir;
  const std::string img = dir.file("crash.img");
  ASSERT_EQ(test::run({"truncate", "-s", "16M", img}).exit_code, 0);
  ASSERT_EQ(test::run({"mkfs.ext4", "-q", "-L", "CRASHME", img}).exit_code, 0);
  SandboxOptions o;
  o.test_hook = hostile_hook;
  std::unique_ptr<Tree> tree = Sandbox::start(o)->explore({{"crash.img", open_raw(img)}});
  ASSERT_EQ(tree->volumes().size(), 1u);
  try {
    tree->filesystem(0);
    ADD_FAILURE() << "opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::corrupt);
    EXPECT_NE(std::string(e.what()).find("crashed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("crash.img"), std::string::npos) << e.what();
  }
  // The parent is unharmed and reads the same image in another sandbox.
  std::unique_ptr<Tree> again = explore_sandboxed({{"crash.img", open_raw(img)}});
  EXPECT_EQ(again->filesystem(0).label(), "CRASHME");
}

TEST(Sandbox, AnswersEqualTheInProcessTree) {
  test::TempDir dir;
  const std::string img = dir.file("disk.img"), stage = dir.file("stage");
  ASSERT_EQ(test::run({"sh", "-c",
                       "mkdir -p " + stage + "/a/b && echo eins > " + stage + "/a/eins && ln -s a " + stage +
                           "/l && head -c 5243003 /dev/urandom > " + stage + "/big && truncate -s 48M " + img +
                           " && printf 'label: gpt\\nsize=40M, type=L\\n' | sfdisk -q " + img +
                           " && truncate -s 40M " + dir.file("p1") + " && mkfs.ext4 -q -d " + stage + " " +
                           dir.file("p1") + " && dd if=" + dir.file("p1") + " of=" + img +
                           " bs=1M seek=1 conv=notrunc status=none"})
                .exit_code,
            0);
  std::unique_ptr<Tree> local = explore({{"disk.img", open_raw(img)}});
  std::unique_ptr<Tree> remote = explore_sandboxed({{"disk.img", open_raw(img)}});
  ASSERT_EQ(local->volumes().size(), remote->volumes().size());
  for (size_t i = 0; i < local->volumes().size(); ++i) {
    const VolumeInfo &a = local->volumes()[i], &b = remote->volumes()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(a.size, b.size);
    EXPECT_EQ(a.content, b.content);
    EXPECT_EQ(a.uuid, b.uuid);
    EXPECT_EQ(a.part_uuid, b.part_uuid);
    EXPECT_EQ(a.browsable, b.browsable);
    EXPECT_EQ(a.notes, b.notes);
  }
  Filesystem &lf = local->filesystem(1), &rf = remote->filesystem(1);
  EXPECT_EQ(lf.uuid(), rf.uuid());
  EXPECT_EQ(lf.used_bytes(), rf.used_bytes());
  auto names = [](std::vector<DirEntry> v) {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const DirEntry& e : v) out.emplace_back(e.name, e.stat.mtime_ns);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(lf.list("/a")), names(rf.list("/a")));
  EXPECT_EQ(lf.readlink("/l"), rf.readlink("/l"));
  const std::vector<ByteRange> lu = lf.used_ranges(), ru = rf.used_ranges();
  ASSERT_EQ(lu.size(), ru.size());
  for (size_t i = 0; i < lu.size(); ++i) EXPECT_EQ(lu[i].offset, ru[i].offset);

  // File data through the child equals the file, for block-aligned reads (which
  // go straight into the caller's buffer), unaligned ones and the file's short end.
  const std::vector<uint8_t> big = test::read_file(stage + "/big");
  ASSERT_EQ(big.size(), 5243003u);
  for (auto [offset, length] : {std::pair<uint64_t, size_t>{0, big.size()}, {4096, 1 << 20}, {1000, 3 << 20},
                                {big.size() - 5000, 8192}}) {
    std::vector<uint8_t> got(length, 0xaa), want(length, 0xbb);
    const size_t n = rf.read("/big", offset, got);
    ASSERT_EQ(n, std::min<size_t>(length, big.size() - offset)) << offset;
    EXPECT_EQ(lf.read("/big", offset, want), n);
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + n, big.begin() + offset)) << "sandboxed read at " << offset;
    EXPECT_TRUE(std::equal(want.begin(), want.begin() + n, big.begin() + offset)) << "in-process read at " << offset;
  }
}

// Block data is received straight into the reader's buffer only when it is the
// expected type and exactly the size asked for; anything else is handed back for
// the caller to refuse, and a bad CRC is an error.
TEST(SandboxProtocol, ReceivingIntoABufferTakesOnlyTheExpectedAnswer) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint8_t> into(8, 0);
  sandbox::Message other;

  sandbox::send_message(a.get(), sandbox::kBlockData, data);
  EXPECT_TRUE(sandbox::receive_message_into(b.get(), sandbox::kBlockData, into, other));
  EXPECT_EQ(into, data);

  into.assign(8, 0);
  sandbox::send_message(a.get(), sandbox::kBlockData, std::span(data).first(7));  // one byte short
  EXPECT_FALSE(sandbox::receive_message_into(b.get(), sandbox::kBlockData, into, other));
  EXPECT_EQ(other.type, sandbox::kBlockData);
  EXPECT_EQ(other.payload.size(), 7u);
  EXPECT_EQ(into, std::vector<uint8_t>(8, 0));

  sandbox::send_message(a.get(), sandbox::kBlockError, data);  // the right size, the wrong type
  EXPECT_FALSE(sandbox::receive_message_into(b.get(), sandbox::kBlockData, into, other));
  EXPECT_EQ(other.type, sandbox::kBlockError);
  EXPECT_EQ(into, std::vector<uint8_t>(8, 0));

  // A flipped payload byte: the CRC refuses it.
  int sv2[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2), 0);
  UniqueFd c(sv2[0]), d(sv2[1]);
  sandbox::send_message(c.get(), sandbox::kBlockData, data);
  std::vector<uint8_t> wire(sandbox::kHeaderSize + data.size() + sandbox::kTrailerSize);
  ASSERT_EQ(::recv(d.get(), wire.data(), wire.size(), MSG_WAITALL), static_cast<ssize_t>(wire.size()));
  wire[sandbox::kHeaderSize + 3] ^= 0xff;
  ASSERT_EQ(::send(a.get(), wire.data(), wire.size(), 0), static_cast<ssize_t>(wire.size()));
  try {
    sandbox::receive_message_into(b.get(), sandbox::kBlockData, into, other);
    ADD_FAILURE() << "a message with a bad CRC was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::corrupt) << e.what();
  }
}

}  // namespace
}  // namespace arche::volume
