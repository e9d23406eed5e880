#include "convert/p2v_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/interrupt.h"

namespace arche::convert {

namespace {

constexpr int kPollSlice = 250;  // ms between interrupt checks

std::string describe(const sockaddr* sa, socklen_t len) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return "?";
  return sa->sa_family == AF_INET6 ? fmt::format("[{}]:{}", host, serv) : fmt::format("{}:{}", host, serv);
}

struct AddrList {
  addrinfo* head = nullptr;
  ~AddrList() {
    if (head) freeaddrinfo(head);
  }
};

void resolve(const HostPort& hp, bool passive, AddrList& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const std::string port = std::to_string(hp.port);
  const int rc = getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), port.c_str(), &hints, &out.head);
  if (rc != 0) fail(ErrorCategory::not_found, "cannot resolve {}: {}", hp.host, gai_strerror(rc));
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(errno, "fcntl O_NONBLOCK");
}

}  // namespace

HostPort parse_host_port(const std::string& text) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      fail(ErrorCategory::usage, "{} is not HOST:PORT", text);
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) fail(ErrorCategory::usage, "{} is not HOST:PORT", text);
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long v = port.empty() ? 70000 : std::strtoul(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || errno != 0 || v > 65535)
    fail(ErrorCategory::usage, "{}: the port must be a number from 0 to 65535", text);
  hp.port = static_cast<uint16_t>(v);
  return hp;
}

Connection::Connection(UniqueFd fd, std::string peer) : fd_(std::move(fd)), peer_(std::move(peer)) {
  set_nonblocking(fd_.get());
  const int one = 1;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection Connection::connect(const HostPort& to, std::chrono::milliseconds timeout) {
  AddrList list;
  resolve(to, false, list);
  std::string last = "no address";
  for (addrinfo* ai = list.head; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) throw_errno(errno, "socket");
    const std::string peer = describe(ai->ai_addr, ai->ai_addrlen);
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = fmt::format("{}: {}", peer, std::strerror(errno));
        continue;
      }
      pollfd p{fd.get(), POLLOUT, 0};
      int waited = 0;
      int rc = 0;
      while ((rc = ::poll(&p, 1, kPollSlice)) == 0 || (rc < 0 && errno == EINTR)) {
        interrupt::check();
        if ((waited += kPollSlice) >= timeout.count()) break;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (rc <= 0) err = ETIMEDOUT;
      else ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = fmt::format("{}: {}", peer, std::strerror(err));
        continue;
      }
    }
    return Connection(std::move(fd), peer);
  }
  throw ConnectionLost(fmt::format("cannot connect to {}:{} ({})", to.host, to.port, last));
}

void Connection::wait(short events) {
  pollfd p{fd_.get(), events, 0};
  for (int64_t waited = 0;;) {
    const int rc = ::poll(&p, 1, kPollSlice);
    if (rc > 0) return;
    if (rc < 0 && errno != EINTR) throw_errno(errno, "poll");
    interrupt::check();
    if (rc == 0 && (waited += kPollSlice) >= idle_.count())
      throw ConnectionLost(fmt::format("{} sent nothing for {} s", peer_, idle_.count() / 1000));
  }
}

void Connection::write_all(std::span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data = data.subspan(static_cast<size_t>(n));
    } else if (errno == EAGAIN || errno == EINTR) {
      wait(POLLOUT);
    } else {
      throw ConnectionLost(fmt::format("connection to {} lost: {}", peer_, std::strerror(errno)));
    }
  }
}

void Connection::read_exact(std::span<uint8_t> out) {
  while (!out.empty()) {
    const ssize_t n = ::recv(fd_.get(), out.data(), out.size(), 0);
    if (n > 0) {
      out = out.subspan(static_cast<size_t>(n));
    } else if (n == 0) {
      throw ConnectionLost(fmt::format("{} closed the connection", peer_));
    } else if (errno == EAGAIN || errno == EINTR) {
      wait(POLLIN);
    } else {
      throw ConnectionLost(fmt::format("connection to {} lost: {}", peer_, std::strerror(errno)));
    }
  }
}

Listener Listener::bind(const HostPort& at) {
  AddrList list;
  resolve(at, true, list);
  std::string last = "no address";
  for (addrinfo* ai = list.head; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) throw_errno(errno, "socket");
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 4) != 0) {
      last = fmt::format("{}: {}", describe(ai->ai_addr, ai->ai_addrlen), std::strerror(errno));
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    Listener l;
    l.fd_ = std::move(fd);
    const std::string addr = describe(reinterpret_cast<sockaddr*>(&ss), len);
    const size_t colon = addr.rfind(':');
    l.host_ = addr.substr(0, colon);
    l.port_ = static_cast<uint16_t>(std::stoul(addr.substr(colon + 1)));
    return l;
  }
  fail(ErrorCategory::io, "cannot listen on {}:{} ({})", at.host, at.port, last);
}

std::optional<Connection> Listener::accept(std::chrono::milliseconds timeout) {
  pollfd p{fd_.get(), POLLIN, 0};
  for (int64_t waited = 0; waited < timeout.count(); waited += kPollSlice) {
    const int rc = ::poll(&p, 1, kPollSlice);
    if (rc < 0 && errno != EINTR) throw_errno(errno, "poll");
    if (rc > 0) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      UniqueFd fd(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
      if (fd) return Connection(std::move(fd), describe(reinterpret_cast<sockaddr*>(&ss), len));
      if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) throw_errno(errno, "accept");
    }
    interrupt::check();
  }
  return std::nullopt;
}

std::string Listener::address() const { return fmt::format("{}:{}", host_, port_); }

}  // namespace arche::convert
