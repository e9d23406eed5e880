// Where the guest's serial console goes: stdout/stdin ("stdio"), a file
// ("file:PATH", output only), a unix socket ("unix:PATH", one client at a time,
// both directions) or nowhere ("none"). Input is read on a thread of its own and
// fed to the UART.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/file.h"
#include "hv/devices/serial.h"

namespace arche::hv {

class Console : public ConsoleOutput {
 public:
  explicit Console(const std::string& spec);
  ~Console() override;

  void write(const uint8_t* data, size_t size) override;
  // Starts feeding input to `serial` (stdio: only when stdin is not at EOF).
  void start_input(Serial& serial);
  void stop();

 private:
  void input_loop(Serial* serial);
  std::string spec_;
  UniqueFd out_fd_;       // file
  UniqueFd listen_fd_;    // unix
  std::string socket_path_;
  std::mutex client_mutex_;
  UniqueFd client_fd_;
  UniqueFd stop_fd_;
  std::atomic<bool> stopping_{false};
  std::thread input_;
  Serial* serial_ = nullptr;
  bool stdio_ = false, tty_raw_ = false;
  struct TermiosSave;
  std::unique_ptr<TermiosSave> saved_termios_;
};

}  // namespace arche::hv
