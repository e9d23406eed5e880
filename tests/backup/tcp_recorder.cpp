#include "tests/backup/tcp_recorder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace arche::test {

namespace {

int connect_to(const std::string& host, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TcpRecorder::TcpRecorder(const std::string& target) {
  const size_t colon = target.rfind(':');
  target_host_ = target.substr(0, colon);
  target_port_ = static_cast<uint16_t>(std::stoi(target.substr(colon + 1)));
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 16) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("tcp recorder: cannot listen on 127.0.0.1");
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpRecorder::~TcpRecorder() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  for (std::thread& t : relays_) t.join();
  ::close(listener_);
}

std::string TcpRecorder::endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

std::string TcpRecorder::bytes() const {
  std::lock_guard lock(mutex_);
  return recorded_;
}

void TcpRecorder::accept_loop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    relays_.emplace_back([this, client] { relay(client); });
  }
}

// Copies both ways until either side closes (or the recorder stops).
void TcpRecorder::relay(int client) {
  const int server = connect_to(target_host_, target_port_);
  if (server < 0) {
    ::close(client);
    return;
  }
  char buffer[65536];
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  while (!stopping_) {
    if (::poll(fds, 2, 100) <= 0) continue;
    bool closed = false;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        closed = true;
        break;
      }
      {
        std::lock_guard lock(mutex_);
        recorded_.append(buffer, static_cast<size_t>(n));
      }
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = ::write(fds[1 - i].fd, buffer + off, static_cast<size_t>(n - off));
        if (w <= 0) {
          closed = true;
          break;
        }
        off += w;
      }
    }
    if (closed) break;
  }
  ::close(client);
  ::close(server);
}

}  // namespace arche::test
