// The sender's side of convert/p2v_network.h.
#include <sodium.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <thread>

#include "convert/p2v_network.h"
#include "convert/p2v_wire.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"

namespace arche::convert {

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(10);

// What a resume must agree on: the disk's name, size and map. A map made again
// from a changed live source differs, and the receiver starts that disk over.
std::array<uint8_t, wire::kDigestSize> map_digest(const std::string& name, const DiskMap& map) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, wire::kDigestSize);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(name.data()), name.size());
  uint8_t word[8];
  auto put = [&](uint64_t v) {
    store_le64(word, v);
    crypto_generichash_update(&st, word, sizeof word);
  };
  put(map.size);
  for (const volume::ByteRange& r : map.ranges) {
    put(r.offset);
    put(r.length);
  }
  std::array<uint8_t, wire::kDigestSize> d;
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

wire::Message expect(Channel& ch, wire::Type type, bool* final = nullptr) {
  wire::Message m = wire::decode(ch.receive(final));
  if (m.type == wire::Type::refuse) {
    const auto category = m.category <= static_cast<uint8_t>(ErrorCategory::interrupted)
                              ? static_cast<ErrorCategory>(m.category)
                              : ErrorCategory::io;
    fail(category, "the receiver refused: {}", m.reason);
  }
  if (m.type != type)
    fail(ErrorCategory::corrupt, "the receiver sent message {} where {} belongs", static_cast<int>(m.type),
         static_cast<int>(type));
  return m;
}

// One connection: every disk from where the receiver stands, then bye.
void send_session(Channel& ch, const Sources& sources, const UsedMap& map,
                  const std::vector<std::array<uint8_t, wire::kDigestSize>>& digests, std::vector<SentDisk>& disks) {
  Progress progress("p2v send", map.bytes());
  for (size_t i = 0; i < disks.size(); ++i) {
    SentDisk& d = disks[i];
    wire::Message disk;
    disk.type = wire::Type::disk;
    disk.index = static_cast<uint32_t>(i);
    disk.name = d.name;
    disk.size = d.size;
    disk.selected = d.selected;
    disk.digest = digests[i];
    ch.send(wire::encode(disk));
    const wire::Message resume = expect(ch, wire::Type::resume);
    if (resume.complete) {
      progress.add(d.selected);
      if (d.file_bytes == 0) d.already_stored = true;
      continue;
    }
    if (resume.position > d.size) fail(ErrorCategory::corrupt, "the receiver resumes {} at {} of {} bytes", d.name, resume.position, d.size);
    d.resumed_from = resume.position;
    if (resume.position > 0) note("{}: resuming at byte {}", d.name, resume.position);
    read_selected(*sources.devices[i], map.disks[i], resume.position, progress,
                  [&](uint64_t offset, std::span<const uint8_t> data) {
                    ch.send(wire::encode_data(offset, data));
                    d.sent += data.size();
                  },
                  [&](uint64_t position) {
                    wire::Message mark;
                    mark.type = wire::Type::mark;
                    mark.position = position;
                    ch.send(wire::encode(mark));
                  });
    wire::Message end;
    end.type = wire::Type::end;
    ch.send(wire::encode(end));
    d.file_bytes = expect(ch, wire::Type::stored).position;
  }
  wire::Message bye;
  bye.type = wire::Type::bye;
  ch.send(wire::encode(bye), true);
  bool final = false;
  expect(ch, wire::Type::bye_ack, &final);
  if (!final) fail(ErrorCategory::corrupt, "the receiver's bye does not end its stream");
  progress.finish();
}

}  // namespace

std::vector<std::string> disk_names(const std::vector<std::string>& sources) {
  std::vector<std::string> out;
  for (const std::string& s : sources) {
    std::string name = boost::filesystem::path(s).stem().string();
    for (char& c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
            c == '-'))
        c = '_';
    if (name.size() > wire::kMaxName) name.resize(wire::kMaxName);
    if (!name.empty() && name[0] == '.') name[0] = '_';
    if (name.empty()) name = "disk";
    if (std::find(out.begin(), out.end(), name) != out.end())
      fail(ErrorCategory::usage, "two sources would both be sent as {}", name);
    out.push_back(name);
  }
  return out;
}

SendResult send_mapped(const Sources& sources, UsedMap map, const SendOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  SendResult result;
  result.map = std::move(map);
  const std::vector<std::string> names = disk_names(sources.paths);
  std::vector<std::array<uint8_t, wire::kDigestSize>> digests;
  for (size_t i = 0; i < sources.paths.size(); ++i) {
    SentDisk d;
    d.source = sources.paths[i];
    d.name = names[i];
    d.size = result.map.disks[i].size;
    d.selected = result.map.disks[i].bytes();
    result.disks.push_back(d);
    digests.push_back(map_digest(d.name, result.map.disks[i]));
  }
  for (unsigned attempt = 0;; ++attempt) {
    try {
      Connection c = Connection::connect(options.to, kConnectTimeout);
      Channel ch = Channel::client(std::move(c), options.token);
      ch.connection().set_idle_timeout(options.idle_timeout);
      ++result.connections;
      send_session(ch, sources, result.map, digests, result.disks);
      break;
    } catch (const ConnectionLost& e) {
      if (attempt >= options.retries) throw;
      warn("{}; reconnecting in {} s ({} of {})", e.what(), options.retry_delay.count() / 1000.0, attempt + 1,
           options.retries);
      for (auto waited = std::chrono::milliseconds(0); waited < options.retry_delay; waited += std::chrono::milliseconds(100)) {
        interrupt::check();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

SendResult send_disks(volume::Sandbox& sandbox, const Sources& sources, const SendOptions& options) {
  std::unique_ptr<volume::Tree> tree = sandbox.explore(sources.disks());
  return send_mapped(sources, map_used_blocks(*tree, sources.devices), options);
}

}  // namespace arche::convert
