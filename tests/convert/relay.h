// A TCP relay on 127.0.0.1 for the network tests: it forwards connections to a
// target, records every byte in both directions (the "capture of the socket"),
// and can cut the first connection after a number of bytes from the client.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/file.h"

namespace arche::convert::testing {

class Relay {
 public:
  // cut_after: bytes client→target after which the first connection is closed
  // (0: never).
  Relay(uint16_t target_port, uint64_t cut_after = 0);
  ~Relay();
  uint16_t port() const { return port_; }
  std::vector<uint8_t> client_bytes() const;  // everything the clients sent
  std::vector<uint8_t> server_bytes() const;  // everything the target sent
  unsigned connections() const { return connections_.load(); }
  bool cut() const { return cut_done_.load(); }

 private:
  void accept_loop();
  void forward(UniqueFd client, bool first);

  uint16_t target_port_, port_ = 0;
  uint64_t cut_after_;
  UniqueFd listener_;
  std::atomic<bool> stop_{false}, cut_done_{false};
  std::atomic<unsigned> connections_{0};
  mutable std::mutex mutex_;
  std::vector<uint8_t> from_client_, from_server_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace arche::convert::testing
