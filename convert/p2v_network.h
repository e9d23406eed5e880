// `p2v send` and `p2v receive`: a server's disks streamed to the virtualisation
// host over one authenticated, encrypted connection (p2v_channel.h), only the
// blocks the used-block map selects, straight into the target images. The
// receiver records durable progress per disk; after a dropped connection the
// sender reconnects, asks where each disk stands and goes on from there.
// docs/p2v.md, "Over the network" and "Protocol".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "convert/p2v_channel.h"
#include "convert/p2v_image.h"
#include "convert/p2v_socket.h"
#include "convert/used_map.h"
#include "core/bytes.h"

namespace arche::convert {

struct ReceiveOptions {
  std::string dir;
  std::string format = "qcow2";  // a format arche can reopen to resume: qcow2, raw, vhdx
  bool overwrite = false;
  // Data received between two durable progress records (image and record fsynced):
  // at most this much is sent again after a dropped connection.
  uint64_t checkpoint_bytes = 64 * MiB;
  std::chrono::milliseconds idle_timeout{120000};
};

struct ReceivedDisk {
  std::string name, target, format;
  uint64_t size = 0;
  uint64_t resumed_from = 0;  // the disk offset the last connection resumed at
  uint64_t received = 0;      // data bytes received for it, over all connections
  uint64_t file_bytes = 0;
  bool already_stored = false;  // stored by an earlier receiver before this one ran
};

struct ReceiveResult {
  std::vector<ReceivedDisk> disks;
  unsigned sessions = 0;  // connections that passed the handshake
  unsigned refused = 0;   // connections that did not prove the token
  unsigned lost = 0;      // sessions that ended without the sender's bye
  double seconds = 0;
};

class Receiver {
 public:
  Receiver(const HostPort& listen, ReceiveOptions options, Token token = Token::random());
  const Token& token() const { return token_; }
  std::string address() const { return listener_.address(); }
  uint16_t port() const { return listener_.port(); }
  // Accepts connections one at a time until a sender ends its session with bye.
  // Wrong tokens and dropped connections are logged and waited past; errors that
  // stop the transfer (an image exists, the disk is full) are told to the sender
  // and thrown.
  ReceiveResult run();

 private:
  Listener listener_;
  ReceiveOptions options_;
  Token token_;
};

struct SendOptions {
  HostPort to;
  Token token;
  unsigned retries = 10;  // reconnections after a dropped connection
  std::chrono::milliseconds retry_delay{2000};
  std::chrono::milliseconds idle_timeout{120000};
};

struct SentDisk {
  std::string source, name;
  uint64_t size = 0, selected = 0;
  uint64_t resumed_from = 0;  // where the last connection resumed the disk
  uint64_t sent = 0;          // data bytes sent, over all connections
  uint64_t file_bytes = 0;    // of the image on the receiver
  bool already_stored = false;
};

struct SendResult {
  UsedMap map;
  std::vector<SentDisk> disks;
  unsigned connections = 0;
  double seconds = 0;
};

// The names the disks get on the receiver: their sources' file names without
// extension, other characters than [A-Za-z0-9._-] as '_'. Usage error on a clash.
std::vector<std::string> disk_names(const std::vector<std::string>& sources);

// Explores and maps the sources in `sandbox`, then sends them.
SendResult send_disks(volume::Sandbox& sandbox, const Sources& sources, const SendOptions& options);
// The sending itself, for a map made already.
SendResult send_mapped(const Sources& sources, UsedMap map, const SendOptions& options);

}  // namespace arche::convert
