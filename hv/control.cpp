#include "hv/control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace arche::hv {

namespace {

constexpr size_t max_request = 64 * 1024;  // a longer line is refused, not buffered
constexpr size_t max_clients = 16;

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) fail(ErrorCategory::usage, "vm: control socket path too long: {}", path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

bool someone_listens(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  UniqueFd s(fd);
  sockaddr_un addr = socket_address(path);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

Json error_reply(const std::string& message) { return Json{{"ok", false}, {"error", message}}; }

}  // namespace

ControlServer::ControlServer(std::string path) : path_(std::move(path)) {
  sockaddr_un addr = socket_address(path_);
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) fail(ErrorCategory::exists, "vm: control path {} exists and is not a socket", path_);
    if (someone_listens(path_)) fail(ErrorCategory::busy, "vm: a VM already listens on {}", path_);
    ::unlink(path_.c_str());  // stale socket of a VM that is gone
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "vm: socket");
  listen_fd_.reset(fd);
  mode_t old = ::umask(0077);  // the socket controls the VM: owner only
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc < 0) throw_errno(errno, "vm: bind control socket " + path_);
  if (::listen(fd, 8) < 0) throw_errno(errno, "vm: listen on " + path_);
  int sfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sfd < 0) throw_errno(errno, "vm: eventfd");
  stop_fd_.reset(sfd);
}

ControlServer::~ControlServer() {
  stop();
  ::unlink(path_.c_str());
}

void ControlServer::add_command(const std::string& name, Handler handler) {
  std::lock_guard lock(mutex_);
  handlers_[name] = std::move(handler);
}

void ControlServer::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { serve(); });
}

void ControlServer::stop() {
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, 8);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::string ControlServer::handle_line(const std::string& line) {
  Json reply;
  try {
    Json request = Json::parse(line);
    if (!request.is_object() || !request.contains("command") || !request["command"].is_string()) {
      reply = error_reply("a request is a JSON object with a \"command\" string");
    } else {
      std::string command = request["command"].get<std::string>();
      Handler handler;
      {
        std::lock_guard lock(mutex_);
        auto it = handlers_.find(command);
        if (it != handlers_.end()) handler = it->second;
      }
      if (!handler) {
        std::string known;
        {
          std::lock_guard lock(mutex_);
          for (const auto& [name, h] : handlers_) known += (known.empty() ? "" : ", ") + name;
        }
        reply = error_reply("unknown command '" + command + "' (known: " + known + ")");
      } else {
        reply = Json{{"ok", true}};
        Json fields = handler(request);
        if (fields.is_object())
          for (auto& [k, v] : fields.items()) reply[k] = v;
      }
    }
  } catch (const Json::exception& e) {
    reply = error_reply(std::string("malformed request: ") + e.what());
  } catch (const std::exception& e) {
    reply = error_reply(e.what());
  }
  // Replies may quote the request (parse errors do): never let bytes that are not
  // UTF-8 turn into an exception here.
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void ControlServer::serve() {
  struct Client {
    UniqueFd fd;
    std::string in, out;
  };
  std::vector<Client> clients;
  for (;;) {
    std::vector<pollfd> fds{{stop_fd_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
    for (auto& c : clients)
      fds.push_back({c.fd.get(), static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      warn("control socket: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      int c = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        if (clients.size() >= max_clients) ::close(c);
        else clients.push_back({UniqueFd(c), {}, {}});
      }
    }
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      short ev = fds[i + 2].revents;
      bool drop = false;
      if (ev & POLLIN) {
        char buf[4096];
        ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n <= 0) drop = true;
        else c.in.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = c.in.find('\n')) != std::string::npos) {
          std::string line = c.in.substr(0, nl);
          c.in.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (line.find_first_not_of(" \t") == std::string::npos) continue;
          c.out += handle_line(line);
        }
        if (c.in.size() > max_request) {
          c.out += error_reply("request longer than 64 KiB").dump() + "\n";  // plain ASCII
          c.in.clear();
        }
      } else if (ev & (POLLHUP | POLLERR)) {
        drop = true;
      }
      if (!c.out.empty() && !drop) {
        ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) c.out.erase(0, static_cast<size_t>(n));
        else if (n < 0 && errno != EAGAIN) drop = true;
      }
      if (drop) {
        clients.erase(clients.begin() + static_cast<long>(i));
        --i;
      }
    }
  }
}

Json control_request(const std::string& path, const Json& request, int timeout_ms) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "vm: socket");
  UniqueFd s(fd);
  sockaddr_un addr = socket_address(path);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) fail(ErrorCategory::not_found, "vm: no VM listens on {}", path);
    throw_errno(err, "vm: connect to " + path);
  }
  std::string line = request.dump() + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    throw_errno(errno, "vm: send to " + path);
  std::string reply;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc == 0) fail(ErrorCategory::io, "vm: no reply from {} within {} ms", path, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno, "vm: poll");
    }
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) fail(ErrorCategory::io, "vm: {} closed the connection", path);
    reply.append(buf, static_cast<size_t>(n));
    size_t nl = reply.find('\n');
    if (nl != std::string::npos) return Json::parse(reply.substr(0, nl));
    if (reply.size() > 1 << 20) fail(ErrorCategory::io, "vm: reply from {} too long", path);
  }
}

}  // namespace arche::hv
