// TCP for `p2v send` / `receive`: a listener and connections whose reads and
// writes wait with poll, so Ctrl-C (interrupt::check) and an idle timeout end
// them, and whose failures are ConnectionLost: the sender then reconnects and
// resumes, the receiver waits for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/error.h"
#include "core/file.h"

namespace arche::convert {

// The peer went away, reset the connection, or said nothing for the idle timeout.
class ConnectionLost : public Error {
 public:
  explicit ConnectionLost(const std::string& message) : Error(ErrorCategory::io, message) {}
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "HOST:PORT", "[v6]:PORT"; a usage error otherwise.
HostPort parse_host_port(const std::string& text);

class Connection {
 public:
  Connection() = default;
  Connection(UniqueFd fd, std::string peer);
  static Connection connect(const HostPort& to, std::chrono::milliseconds timeout);

  void write_all(std::span<const uint8_t> data);
  void read_exact(std::span<uint8_t> out);
  void set_idle_timeout(std::chrono::milliseconds t) { idle_ = t; }
  const std::string& peer() const { return peer_; }
  int fd() const { return fd_.get(); }

 private:
  void wait(short events);
  UniqueFd fd_;
  std::string peer_;
  std::chrono::milliseconds idle_{120000};
};

class Listener {
 public:
  static Listener bind(const HostPort& at);
  // A connection, or nullopt when `timeout` passed (interrupt::check in between).
  std::optional<Connection> accept(std::chrono::milliseconds timeout);
  std::string address() const;  // "127.0.0.1:40123": the port the kernel chose for 0
  uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace arche::convert
