// libFuzzer target for what the SFTP client parses from the server: the packet stream
// (cut into pieces as the channel delivers it, sizes chosen by the first byte) and
// every reply decoder applied to whatever packets come out. Any input must end in
// success or an arche::Error. Seeds (valid replies of each type) are written into an
// empty corpus.
#include <libssh/sftp.h>

#include <boost/filesystem.hpp>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>

#include "backup/sftp_client.h"
#include "backup/sftp_packet.h"
#include "core/bytes.h"
#include "core/error.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;
using namespace arche::backup::sftp;

namespace {

std::vector<uint8_t> packet(uint8_t type, uint32_t id, const std::function<void(ByteWriter&)>& body) {
  ByteWriter w;
  w.be32(0);
  w.u8(type);
  w.be32(id);
  body(w);
  std::vector<uint8_t> out = w.take();
  store_be32(out.data(), static_cast<uint32_t>(out.size() - 4));
  return out;
}

void str(ByteWriter& w, std::string_view s) {
  w.be32(static_cast<uint32_t>(s.size()));
  w.string(s);
}

void attrs(ByteWriter& w) {
  w.be32(SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID | SSH_FILEXFER_ATTR_PERMISSIONS |
         SSH_FILEXFER_ATTR_ACMODTIME | SSH_FILEXFER_ATTR_EXTENDED);
  w.be64(1234);
  w.be32(0);
  w.be32(0);
  w.be32(0100600);
  w.be32(1);
  w.be32(2);
  w.be32(1);
  str(w, "x@example.com");
  str(w, "v");
}

void write_seeds(const std::string& dir) {
  std::vector<uint8_t> all = {7};  // piece size selector
  auto add = [&](const std::vector<uint8_t>& p) { all.insert(all.end(), p.begin(), p.end()); };
  add(packet(SSH_FXP_VERSION, 3, [](ByteWriter& w) {
    str(w, "posix-rename@openssh.com");
    str(w, "1");
    str(w, "limits@openssh.com");
    str(w, "1");
  }));
  add(packet(SSH_FXP_STATUS, 1, [](ByteWriter& w) {
    w.be32(SSH_FX_NO_SUCH_FILE);
    str(w, "No such file");
    str(w, "");
  }));
  add(packet(SSH_FXP_HANDLE, 2, [](ByteWriter& w) { str(w, "handle-1"); }));
  add(packet(SSH_FXP_DATA, 3, [](ByteWriter& w) { str(w, "some bytes"); }));
  add(packet(SSH_FXP_NAME, 4, [](ByteWriter& w) {
    w.be32(2);
    for (const char* name : {"data", "config"}) {
      str(w, name);
      str(w, "-rw------- 1 root root 1234 Jan 1 00:00 x");
      attrs(w);
    }
  }));
  add(packet(SSH_FXP_ATTRS, 5, attrs));
  add(packet(SSH_FXP_EXTENDED_REPLY, 6, [](ByteWriter& w) {
    for (int i = 0; i < 11; ++i) w.be64(4096 * (i + 1));
  }));
  std::ofstream(dir + "/replies", std::ios::binary)
      .write(reinterpret_cast<const char*>(all.data()), static_cast<std::streamsize>(all.size()));
}

void decode(const Reply& reply) {
  switch (reply.type) {
    case SSH_FXP_VERSION: parse_version(reply); break;
    case SSH_FXP_STATUS:
      parse_status(reply);
      try {
        check_status(reply, "fuzz");
      } catch (const Error&) {
      }
      break;
    case SSH_FXP_HANDLE: parse_handle(reply); break;
    case SSH_FXP_DATA: parse_data(reply); break;
    case SSH_FXP_NAME: parse_names(reply); break;
    case SSH_FXP_ATTRS: parse_attrs(reply); break;
    case SSH_FXP_EXTENDED_REPLY: try { parse_limits(reply);
      } catch (const Error&) {
      }
      parse_statvfs(reply);
      break;
    default: parse_status(reply);  // a wrong type must be refused
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (64u << 10)) return 0;  // targets.sh: -max_len
  const size_t piece = size_t{data[0]} * 37 + 1;
  ReplyParser parser;
  try {
    for (size_t at = 1; at < size; at += piece) {
      parser.feed(std::span(data + at, std::min(piece, size - at)));
      while (std::optional<Reply> reply = parser.next()) {
        try {
          decode(*reply);
        } catch (const Error&) {
        }
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
