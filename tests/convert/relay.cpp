#include "tests/convert/relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace arche::convert::testing {

Relay::Relay(uint16_t target_port, uint64_t cut_after) : target_port_(target_port), cut_after_(cut_after) {
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_.get(), 4) != 0)
    throw std::runtime_error("relay: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

Relay::~Relay() {
  stop_ = true;
  acceptor_.join();
  for (std::thread& t : workers_) t.join();
}

std::vector<uint8_t> Relay::client_bytes() const {
  std::lock_guard lock(mutex_);
  return from_client_;
}

std::vector<uint8_t> Relay::server_bytes() const {
  std::lock_guard lock(mutex_);
  return from_server_;
}

void Relay::accept_loop() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    const bool first = connections_++ == 0;
    workers_.emplace_back([this, fd = c.release(), first]() mutable { forward(UniqueFd(fd), first); });
  }
}

void Relay::forward(UniqueFd client, bool first) {
  UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(target_port_);
  if (::connect(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  uint64_t forwarded = 0;
  std::vector<uint8_t> buf(256 << 10);
  pollfd p[2] = {{client.get(), POLLIN, 0}, {server.get(), POLLIN, 0}};
  while (!stop_) {
    if (::poll(p, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      size_t want = buf.size();
      if (i == 0 && first && cut_after_ > 0) want = std::min<uint64_t>(want, cut_after_ - forwarded);
      const ssize_t n = ::recv(p[i].fd, buf.data(), want, 0);
      if (n <= 0) return;  // one side closed: both are closed on return
      {
        std::lock_guard lock(mutex_);
        auto& log = i == 0 ? from_client_ : from_server_;
        log.insert(log.end(), buf.begin(), buf.begin() + n);
      }
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::send(p[1 - i].fd, buf.data() + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
        if (w <= 0) return;
        done += w;
      }
      if (i == 0 && first && cut_after_ > 0 && (forwarded += static_cast<uint64_t>(n)) >= cut_after_) {
        // A reset, as a dropped link looks to both ends.
        linger l{1, 0};
        ::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::setsockopt(server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        cut_done_ = true;
        return;
      }
    }
  }
}

}  // namespace arche::convert::testing
