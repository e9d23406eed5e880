// Acceptance 2: `p2v send` / `receive` over 127.0.0.1 (the library under the
// CLI): the same images as local imaging, byte for byte; a wrong token refused
// before any data moves; a connection cut in the middle resumes and ends
// identical; nothing of the disks' content readable in a capture of the socket.
// Two disks in one session: an ext4 file system (mapped) and unknown data (copied
// whole), both holding marker strings. No root needed (mkfs.ext4 -d).
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <future>
#include <string_view>

#include "convert/p2v_network.h"
#include "convert/p2v_wire.h"
#include "core/file.h"
#include "image/format.h"
#include "tests/convert/convert_test_util.h"
#include "tests/convert/relay.h"

namespace arche::convert::testing {
namespace {

using arche::test::read_file;
using arche::test::run;
using arche::test::TempDir;
using arche::test::write_file;

constexpr std::string_view kMarker = "P2V-PLAINTEXT-MARKER-c0ffee";

// Random bytes with the marker every 64 KiB.
std::vector<uint8_t> marked(size_t size, uint64_t seed) {
  std::vector<uint8_t> d = arche::test::random_bytes(size, seed);
  for (size_t at = 100; at + kMarker.size() < size; at += 64 << 10) std::copy(kMarker.begin(), kMarker.end(), d.begin() + at);
  return d;
}

bool contains_marker(const std::vector<uint8_t>& bytes) {
  return std::search(bytes.begin(), bytes.end(), kMarker.begin(), kMarker.end()) != bytes.end();
}

class Network : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("mkfs.ext4");
    const std::string stage = dir.file("stage");
    boost::filesystem::create_directories(stage + "/srv/daten");
    for (int i = 0; i < 10; ++i) write_file(fmt::format("{}/srv/daten/f{}.bin", stage, i), marked(2 << 20, 10 + i));
    const std::string text = std::string(kMarker) + " Kundenliste in plain text\n";
    write_file(stage + "/srv/kunden.txt", std::vector<uint8_t>(text.begin(), text.end()));
    const auto r = run({"mkfs.ext4", "-q", "-F", "-L", "netdisk", "-d", stage, sda, "64M"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_file(sdb, marked(6 << 20, 99));  // no file system: copied whole
    map = map_of({sda, sdb});
    ASSERT_EQ(map.disks.size(), 2u);
    ASSERT_TRUE(map.volumes.size() >= 2);
    // The local images to compare with.
    Progress quiet("", 0, false);
    const std::vector<std::string> sources{sda, sdb};
    for (size_t i = 0; i < 2; ++i) {
      auto src = open_read_only(sources[i]);
      ImageOptions o;
      o.durable = false;
      write_image(*src, map.disks[i], dir.file(i == 0 ? "local-sda.qcow2" : "local-sdb.qcow2"), o, quiet);
    }
    boost::filesystem::create_directories(out);
  }

  Sources sources() const { return open_sources({sda, sdb}); }

  ReceiveOptions receive_options() const {
    ReceiveOptions o;
    o.dir = out;
    o.checkpoint_bytes = 1 << 20;
    o.idle_timeout = std::chrono::seconds(30);
    return o;
  }

  SendOptions send_options(const Receiver& r, uint16_t port) const {
    SendOptions o;
    o.to = {"127.0.0.1", port};
    o.token = r.token();
    o.retry_delay = std::chrono::milliseconds(100);
    o.retries = 3;
    o.idle_timeout = std::chrono::seconds(30);
    return o;
  }

  void expect_same_as_local() const {
    for (const char* name : {"sda", "sdb"}) {
      const std::string got = fmt::format("{}/{}.qcow2", out, name);
      ASSERT_TRUE(boost::filesystem::exists(got)) << got;
      EXPECT_TRUE(read_file(got) == read_file(dir.file(fmt::format("local-{}.qcow2", name))))
          << got << " differs from the local image";
    }
    expect_image_matches(sda, out + "/sda.qcow2", map.disks[0]);
    expect_image_matches(sdb, out + "/sdb.qcow2", map.disks[1]);
    // Nothing of the transfer is left beside the images.
    for (const auto& e : boost::filesystem::directory_iterator(out)) {
      const std::string n = e.path().filename().string();
      EXPECT_TRUE(n == "sda.qcow2" || n == "sdb.qcow2") << n;
    }
  }

  TempDir dir;
  std::string sda = dir.file("sda.raw"), sdb = dir.file("sdb.raw"), out = dir.file("host");
  UsedMap map;
};

TEST_F(Network, SendReceiveGivesTheLocalImagesAndNoPlaintextOnTheWire) {
  Receiver receiver({"127.0.0.1", 0}, receive_options());
  auto received = std::async(std::launch::async, [&] { return receiver.run(); });
  Relay relay(receiver.port());
  const SendResult sent = send_mapped(sources(), map, send_options(receiver, relay.port()));
  const ReceiveResult r = received.get();
  EXPECT_EQ(sent.connections, 1u);
  EXPECT_EQ(r.sessions, 1u);
  ASSERT_EQ(r.disks.size(), 2u);
  ASSERT_EQ(sent.disks.size(), 2u);
  EXPECT_EQ(sent.disks[0].name, "sda");
  EXPECT_EQ(sent.disks[1].name, "sdb");
  EXPECT_EQ(sent.disks[1].sent, 6u << 20);  // copied whole, all non-zero
  EXPECT_GT(sent.disks[0].sent, 12u << 20);
  expect_same_as_local();

  // The capture holds all the data, encrypted: no marker, in either direction.
  const std::vector<uint8_t> up = relay.client_bytes(), down = relay.server_bytes();
  EXPECT_GT(up.size(), sent.disks[0].sent + sent.disks[1].sent);
  EXPECT_FALSE(contains_marker(up));
  EXPECT_FALSE(contains_marker(down));
  ASSERT_TRUE(contains_marker(read_file(sdb)));  // the check can fail
  ASSERT_GE(up.size(), 4u);
  EXPECT_EQ(std::string(up.begin(), up.begin() + 4), "AP2V");
}

TEST_F(Network, AWrongTokenIsRefusedBeforeAnyDataMoves) {
  Receiver receiver({"127.0.0.1", 0}, receive_options());
  auto received = std::async(std::launch::async, [&] { return receiver.run(); });
  {
    Relay relay(receiver.port());
    SendOptions wrong = send_options(receiver, relay.port());
    wrong.token = Token::random();
    try {
      send_mapped(sources(), map, wrong);
      ADD_FAILURE() << "a wrong token was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::crypto) << e.what();
      EXPECT_NE(std::string(e.what()).find("does not know this token"), std::string::npos) << e.what();
    }
    // The sender sent its hello (magic, version, type, its public key) and nothing more.
    EXPECT_EQ(relay.client_bytes().size(), 8u + 32u);
    EXPECT_EQ(relay.connections(), 1u);
  }
  EXPECT_TRUE(boost::filesystem::is_empty(out));
  // The receiver is still there for the right token.
  const SendResult sent = send_mapped(sources(), map, send_options(receiver, receiver.port()));
  const ReceiveResult r = received.get();
  EXPECT_EQ(r.refused, 1u);
  EXPECT_EQ(r.sessions, 1u);
  expect_same_as_local();
}

TEST_F(Network, AConnectionCutInTheMiddleResumesAndEndsIdentical) {
  Receiver receiver({"127.0.0.1", 0}, receive_options());
  auto received = std::async(std::launch::async, [&] { return receiver.run(); });
  // Cut after 12 MiB from the sender: inside sda's 20 MiB, past several checkpoints.
  Relay relay(receiver.port(), 12 << 20);
  const SendResult sent = send_mapped(sources(), map, send_options(receiver, relay.port()));
  const ReceiveResult r = received.get();
  EXPECT_TRUE(relay.cut());
  EXPECT_EQ(sent.connections, 2u);
  EXPECT_EQ(r.sessions, 2u);
  EXPECT_EQ(r.lost, 1u);
  ASSERT_EQ(sent.disks.size(), 2u);
  // sda resumed from a durable checkpoint, not from the start, and was not sent twice.
  // (What the relay passed but the receiver had not read yet is lost with the
  // connection, so where exactly it resumes depends on socket buffers.)
  EXPECT_GE(sent.disks[0].resumed_from, 1u << 20);
  EXPECT_LT(sent.disks[0].sent, map.disks[0].bytes() + (12u << 20));
  EXPECT_EQ(sent.disks[1].resumed_from, 0u);
  expect_same_as_local();
}

TEST_F(Network, AnImageThatExistsIsRefusedWithTheReason) {
  write_file(out + "/sdb.qcow2", {1, 2, 3});
  Receiver receiver({"127.0.0.1", 0}, receive_options());
  auto received = std::async(std::launch::async, [&] { return receiver.run(); });
  try {
    send_mapped(sources(), map, send_options(receiver, receiver.port()));
    ADD_FAILURE() << "sent over an existing image";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::exists) << e.what();
    EXPECT_NE(std::string(e.what()).find("sdb.qcow2 already exists"), std::string::npos) << e.what();
  }
  EXPECT_THROW(received.get(), Error);
  EXPECT_EQ(read_file(out + "/sdb.qcow2"), (std::vector<uint8_t>{1, 2, 3}));
}

TEST(P2vWire, MessagesRoundTripAndMalformedOnesAreCorrupt) {
  wire::Message d;
  d.type = wire::Type::disk;
  d.index = 2;
  d.name = "sdb";
  d.size = 1 << 30;
  d.selected = 1 << 20;
  d.digest.fill(7);
  const std::vector<uint8_t> bytes = wire::encode(d);
  const wire::Message back = wire::decode(bytes);
  EXPECT_EQ(back.name, "sdb");
  EXPECT_EQ(back.size, 1u << 30);
  EXPECT_EQ(back.digest, d.digest);
  EXPECT_EQ(wire::encode(back), bytes);
  auto corrupt = [](std::vector<uint8_t> b, const std::string& words) {
    try {
      wire::decode(b);
      ADD_FAILURE() << "accepted: " << words;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::corrupt) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  corrupt(std::vector<uint8_t>(bytes.begin(), bytes.end() - 1), "truncated");
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  corrupt(longer, "bytes after");
  corrupt({42}, "unknown type 42");
  corrupt({}, "empty");
  wire::Message evil = d;
  evil.name = "../etc";
  corrupt(wire::encode(evil), "plain file name");
  corrupt({static_cast<uint8_t>(wire::Type::data), 0, 0, 0, 0, 0, 0, 0, 0}, "without bytes");
}

TEST(P2vToken, ParsesWhatItPrints) {
  const Token t = Token::random();
  EXPECT_EQ(t.text().size(), 35u);
  EXPECT_EQ(Token::parse(t.text()).bytes, t.bytes);
  EXPECT_THROW(Token::parse("abc"), Error);
  EXPECT_NE(Token::random().bytes, t.bytes);
}

// The CLI: `receive` prints the token, `send` takes it from a file (or the
// environment, or a prompt) and refuses it as an argument, which would show in
// `ps` and the shell history.
TEST(P2vCli, SendTakesTheTokenFromAFileAndNeverAsAnArgument) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  write_file(dir.file("sda"), marked(3 << 20, 7));
  boost::filesystem::create_directories(dir.file("out"));
  const auto refused = arche::test::arche({"p2v", "send", dir.file("sda"), "--to", "127.0.0.1:9", "--token",
                                           "3f9c01aa-77d2b0e4-9a1c5e60-0b8d2f31"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("--token"), std::string::npos) << refused.err;

  // receive in the background; its first line (JSON) gives the address and token.
  const std::string script = R"sh(set -e
cd "$1"
"$2" p2v receive --listen 127.0.0.1:0 --dir out --json > received.json 2> receive.err &
receiver=$!
for _ in $(seq 300); do [ -s received.json ] && break; sleep 0.1; done
line=$(head -n 1 received.json)
address=$(printf %s "$line" | sed -n 's/.*"listen": *"\([^"]*\)".*/\1/p')
printf %s "$line" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' > token
"$2" p2v send sda --to "$address" --token-file token --json > sent.json
wait "$receiver"
)sh";
  const auto r = run({"bash", "-c", script, "p2v-cli", dir.path(), arche::test::arche_binary()}, "");
  const std::vector<uint8_t> receive_err = read_file(dir.file("receive.err"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\nreceive: " << std::string(receive_err.begin(), receive_err.end());
  const auto cmp = run({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", dir.file("sda"), dir.file("out/sda.qcow2")});
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
}

}  // namespace
}  // namespace arche::convert::testing
