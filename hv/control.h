// The control socket: JSON lines on a unix stream socket. Each request is one line
// holding an object with a "command" (status, pause, resume, quit; the snapshot
// engine registers more); each reply is one line: {"ok":true,...} or
// {"ok":false,"error":"..."}. Malformed input gets an error reply and the
// connection stays usable; no request can crash the VMM.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "core/file.h"
#include "core/json.h"

namespace arche::hv {

class ControlServer {
 public:
  // The handler gets the whole request object and returns the reply's fields.
  using Handler = std::function<Json(const Json& request)>;

  explicit ControlServer(std::string path);
  ~ControlServer();

  void add_command(const std::string& name, Handler handler);
  void start();
  void stop();
  const std::string& path() const { return path_; }

  // Handles one request line (public for tests).
  std::string handle_line(const std::string& line);

 private:
  void serve();
  std::string path_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  std::mutex mutex_;
  std::map<std::string, Handler> handlers_;
  std::thread thread_;
};

// Client side: sends one request and returns the reply; throws not_found when no VM
// listens at `path`, io on a broken connection.
Json control_request(const std::string& path, const Json& request, int timeout_ms = 10000);

}  // namespace arche::hv
