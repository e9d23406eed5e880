// A TCP relay on 127.0.0.1 that forwards every connection to a target and keeps a
// copy of every byte it forwards, both ways: what a wire capture would show, for
// tests that prove no plaintext crosses the network.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace arche::test {

class TcpRecorder {
 public:
  explicit TcpRecorder(const std::string& target);  // "127.0.0.1:PORT"
  ~TcpRecorder();
  TcpRecorder(const TcpRecorder&) = delete;
  TcpRecorder& operator=(const TcpRecorder&) = delete;

  // "127.0.0.1:PORT" to connect to instead of the target.
  std::string endpoint() const;
  // Everything forwarded so far (both directions, in the order relayed).
  std::string bytes() const;

 private:
  void accept_loop();
  void relay(int client);

  std::string target_host_;
  uint16_t target_port_ = 0;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> relays_;
  mutable std::mutex mutex_;
  std::string recorded_;
};

}  // namespace arche::test
