// Acceptance 4: virtio-net on a TAP device. The guest broadcasts a frame (ethertype
// 0x88b5) that must arrive on the host's TAP; the host answers with a frame
// (0x88b6) that must reach the guest.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>

#include "tests/hv/hv_test_util.h"

namespace arche::test {
namespace {

class TapDevice {
 public:
  explicit TapDevice(std::string name) : name_(std::move(name)) {
    run({"ip", "link", "del", name_});  // left over from an interrupted run
    ok_ = run({"ip", "tuntap", "add", "dev", name_, "mode", "tap"}).exit_code == 0;
    if (!ok_) return;
    std::ofstream("/proc/sys/net/ipv6/conf/" + name_ + "/disable_ipv6") << "1";  // no IPv6 chatter
    ok_ = run({"ip", "link", "set", name_, "up"}).exit_code == 0;
  }
  ~TapDevice() { run({"ip", "link", "del", name_}); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

TEST(VirtioNet, FramesCrossTheTapInBothDirections) {
  std::string why;
  if (!kvm_usable(&why)) GTEST_SKIP() << "needs /dev/kvm: " << why;
  if (!tun_usable(&why)) GTEST_SKIP() << "needs /dev/net/tun: " << why;
  ARCHE_REQUIRE_PROGRAM("ip");
  TempDir dir;
  TapDevice tap("archet" + std::to_string(::getpid() % 100000));
  ASSERT_TRUE(tap.ok()) << "cannot create TAP device " << tap.name();

  int sock = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  ASSERT_GE(sock, 0) << std::strerror(errno);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(if_nametoindex(tap.name().c_str()));
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&sll), sizeof sll), 0) << std::strerror(errno);

  std::string console = dir.file("console.log");
  Background vm({arche_binary(), "vm", "run", "--kernel", test_guest(), "--memory", "32M", "--net",
                 "tap=" + tap.name() + ",mac=52:54:00:ab:cd:ef", "--cmdline", "net", "--serial", "file:" + console},
                dir.file("out"), dir.file("err"));

  // The guest's frame on the TAP.
  uint8_t frame[2048];
  ssize_t got = 0;
  bool seen = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    got = ::recv(sock, frame, sizeof frame, 0);
    seen = got >= 14 + 17 && frame[12] == 0x88 && frame[13] == 0xb5;
  }
  ASSERT_TRUE(seen) << "no frame from the guest\n" << read_text(console) << read_text(dir.file("err"));
  EXPECT_EQ(std::memcmp(frame + 6, "\x52\x54\x00\xab\xcd\xef", 6), 0) << "source MAC is the configured one";
  EXPECT_EQ(std::memcmp(frame + 14, "arche-guest-frame", 17), 0);

  // The host's answer reaches the guest.
  uint8_t reply[60] = {};
  std::memcpy(reply, frame + 6, 6);
  std::memcpy(reply + 6, "\x02\x00\x00\x00\x00\x01", 6);
  reply[12] = 0x88;
  reply[13] = 0xb6;
  std::memcpy(reply + 14, "arche-host-frame", 16);
  ASSERT_EQ(::send(sock, reply, sizeof reply, 0), static_cast<ssize_t>(sizeof reply)) << std::strerror(errno);
  int rc = vm.wait(90000);
  ::close(sock);
  std::string out = read_text(console);
  EXPECT_EQ(rc, 0) << out << read_text(dir.file("err"));
  EXPECT_NE(out.find("net: received 'arche-host-frame'"), std::string::npos) << out;
}

}  // namespace
}  // namespace arche::test
