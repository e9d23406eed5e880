#include "hv/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace arche::hv {

struct Console::TermiosSave {
  termios t;
};

namespace {

UniqueFd listen_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) fail(ErrorCategory::usage, "vm: socket path too long: {}", path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "vm: socket");
  UniqueFd sock(fd);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ::unlink(path.c_str());  // a stale socket of a VM that is gone (callers check liveness first)
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) throw_errno(errno, "vm: bind " + path);
  if (::listen(fd, 4) < 0) throw_errno(errno, "vm: listen on " + path);
  return sock;
}

}  // namespace

Console::Console(const std::string& spec) : spec_(spec) {
  int sfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sfd < 0) throw_errno(errno, "vm: eventfd");
  stop_fd_.reset(sfd);
  if (spec == "stdio") {
    stdio_ = true;
  } else if (spec.rfind("file:", 0) == 0) {
    std::string path = spec.substr(5);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) throw_errno(errno, "vm: serial output " + path);
    out_fd_.reset(fd);
  } else if (spec.rfind("unix:", 0) == 0) {
    socket_path_ = spec.substr(5);
    listen_fd_ = listen_unix(socket_path_);
  }
}

Console::~Console() {
  stop();
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

void Console::write(const uint8_t* data, size_t size) {
  int fd = -1;
  if (stdio_) fd = STDOUT_FILENO;
  else if (out_fd_) fd = out_fd_.get();
  if (fd >= 0) {
    while (size) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // console output is best effort: a closed stdout must not stop the VM
      data += n;
      size -= static_cast<size_t>(n);
    }
    return;
  }
  std::lock_guard lock(client_mutex_);
  if (client_fd_) {
    // A slow or stuck client loses output rather than stalling the vCPU.
    if (::send(client_fd_.get(), data, size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) client_fd_.reset();
  }
}

void Console::start_input(Serial& serial) {
  serial_ = &serial;
  if (stdio_ && ::isatty(STDIN_FILENO)) {
    saved_termios_ = std::make_unique<TermiosSave>();
    if (::tcgetattr(STDIN_FILENO, &saved_termios_->t) == 0) {
      termios raw = saved_termios_->t;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // keep ISIG: Ctrl-C still stops arche
      raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
      tty_raw_ = true;
    }
  }
  if (stdio_ || listen_fd_) input_ = std::thread([this, &serial] { input_loop(&serial); });
}

void Console::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, 8);
  if (serial_) serial_->wake_receivers();
  if (input_.joinable()) input_.join();
  if (tty_raw_) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios_->t);
    tty_raw_ = false;
  }
}

void Console::input_loop(Serial* serial) {
  uint8_t buf[512];
  for (;;) {
    pollfd fds[3];
    nfds_t n = 0;
    fds[n++] = {stop_fd_.get(), POLLIN, 0};
    int input = -1;
    if (stdio_) input = STDIN_FILENO;
    else {
      std::lock_guard lock(client_mutex_);
      input = client_fd_ ? client_fd_.get() : -1;
    }
    if (input >= 0) fds[n++] = {input, POLLIN, 0};
    if (listen_fd_) fds[n++] = {listen_fd_.get(), POLLIN, 0};
    if (::poll(fds, n, -1) < 0 && errno != EINTR) return;
    if (fds[0].revents || stopping_) return;
    for (nfds_t i = 1; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (listen_fd_ && fds[i].fd == listen_fd_.get()) {
        int c = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          std::lock_guard lock(client_mutex_);
          client_fd_.reset(c);  // the newest client takes over the console
        }
        continue;
      }
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        if (stdio_) return;  // stdin closed: no more input
        std::lock_guard lock(client_mutex_);
        client_fd_.reset();
        continue;
      }
      if (!serial->receive(buf, static_cast<size_t>(got), stopping_)) return;
    }
  }
}

}  // namespace arche::hv
