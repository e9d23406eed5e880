// The receiver's side of convert/p2v_network.h.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <boost/filesystem.hpp>
#include <chrono>
#include <map>
#include <optional>

#include "convert/p2v_network.h"
#include "convert/p2v_wire.h"
#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "image/format.h"

namespace arche::convert {

namespace {

// The durable progress of one disk, `.NAME.EXT.p2v-state` beside the image (sealed
// record: magic, version, CRC32C; docs/p2v.md "Protocol"): the sender's map digest,
// the disk size, the format, how far the image below holds the sender's data, and
// whether it is stored under its final name.
constexpr std::string_view kStateMagic = "ARCHEP2S";
constexpr RecordVersion kStateVersion{1, 0};

struct DiskState {
  std::array<uint8_t, wire::kDigestSize> digest{};
  uint64_t size = 0;
  std::string format;
  uint64_t position = 0;
  bool complete = false;
};

std::vector<uint8_t> seal_state(const DiskState& s) {
  ByteWriter w;
  w.bytes(s.digest);
  w.le64(s.size);
  w.u8(static_cast<uint8_t>(s.format.size()));
  w.string(s.format);
  w.le64(s.position);
  w.u8(s.complete);
  return seal_record(kStateMagic, kStateVersion, w.buffer());
}

// nullopt when absent or unreadable (then the disk starts over: nothing is lost).
std::optional<DiskState> load_state(const std::string& path) {
  if (!boost::filesystem::exists(path)) return std::nullopt;
  try {
    File f = File::open(path, OpenMode::read_only);
    std::vector<uint8_t> data(f.size());
    f.read_exact(0, data);
    OpenedRecord rec = open_record(data, kStateMagic, kStateVersion.major, path);
    ByteReader r(rec.payload, path);
    DiskState s;
    std::span<const uint8_t> d = r.bytes(wire::kDigestSize);
    std::copy(d.begin(), d.end(), s.digest.begin());
    s.size = r.le64();
    s.format = r.string(r.u8());
    s.position = r.le64();
    s.complete = r.u8() != 0;
    return s;
  } catch (const Error& e) {
    warn("{}; the disk starts over", e.what());
    return std::nullopt;
  }
}

class Session {
 public:
  Session(Channel& ch, const ReceiveOptions& o, std::map<std::string, ReceivedDisk>& disks)
      : ch_(ch), options_(o), disks_(disks), driver_(image::driver_for(o.format)) {}
  ~Session() { close_image(); }

  // True when the sender said bye.
  bool run() {
    for (;;) {
      bool final = false;
      wire::Message m = wire::decode(ch_.receive(&final));
      if (final != (m.type == wire::Type::bye)) fail(ErrorCategory::corrupt, "{}: the stream ends with message {}", ch_.connection().peer(), static_cast<int>(m.type));
      switch (m.type) {
        case wire::Type::disk: begin(m); break;
        case wire::Type::data: data(m); break;
        case wire::Type::mark: mark(m.position); break;
        case wire::Type::end: end(); break;
        case wire::Type::bye: bye(); return true;
        default: fail(ErrorCategory::corrupt, "{}: message {} from a sender", ch_.connection().peer(), static_cast<int>(m.type));
      }
    }
  }

  // Tells the sender why the transfer stops (best effort: it may be gone).
  void refuse(const Error& e) {
    try {
      wire::Message m;
      m.type = wire::Type::refuse;
      m.category = static_cast<uint8_t>(e.category());
      m.reason = e.what();
      ch_.send(wire::encode(m));
    } catch (const Error&) {
    }
  }

 private:
  std::string extension() const { return driver_.name() == std::string("vpc") ? "vhd" : driver_.name(); }
  std::string path(const std::string& name, const std::string& suffix) const {
    const std::string file = name + "." + extension();
    return (boost::filesystem::path(options_.dir) / (suffix.empty() ? file : "." + file + suffix)).string();
  }

  void open_image(const std::string& part) {
    image::OpenOptions o;
    o.writable = true;
    o.format = driver_.name();
    o.open_backing = false;
    o.no_barriers = true;  // made durable at each checkpoint, below
    image_ = image::open_image(part, o);
  }

  void begin(const wire::Message& m) {
    if (image_) fail(ErrorCategory::corrupt, "{}: a new disk before the end of {}", ch_.connection().peer(), name_);
    name_ = m.name;
    target_ = path(m.name, "");
    part_ = path(m.name, ".p2v-part");
    state_path_ = path(m.name, ".p2v-state");
    ReceivedDisk& d = disks_[name_];
    d.name = name_;
    d.target = target_;
    d.format = driver_.name();
    d.size = m.size;
    size_ = m.size;
    state_ = DiskState{m.digest, m.size, driver_.name(), 0, false};
    const std::optional<DiskState> had = load_state(state_path_);
    const bool same = had && had->digest == m.digest && had->size == m.size && had->format == state_.format;
    const bool exists = boost::filesystem::exists(target_);
    wire::Message resume;
    resume.type = wire::Type::resume;
    if (same && had->complete && exists) {
      if (d.file_bytes == 0) d.already_stored = true;
      d.file_bytes = File::open(target_, OpenMode::read_only).allocated_bytes();
      resume.complete = true;
      state_ = *had;
      ch_.send(wire::encode(resume));
      return;
    }
    if (exists && !options_.overwrite) fail(ErrorCategory::exists, "{} already exists (refusing to overwrite it)", target_);
    if (same && !had->complete && boost::filesystem::exists(part_)) {
      state_.position = had->position;
      open_image(part_);
    } else {
      ::unlink(part_.c_str());
      image::CreateOptions create;
      create.format = driver_.name();
      create.size = m.size;
      create.final_path = target_;
      create.overwrite = true;  // the part file: its own name
      driver_.create(part_, create);
      open_image(part_);
      save_state();
    }
    end_ = state_.position;
    since_checkpoint_ = 0;
    d.resumed_from = state_.position;
    resume.position = state_.position;
    ch_.send(wire::encode(resume));
  }

  void data(const wire::Message& m) {
    if (!image_) fail(ErrorCategory::corrupt, "{}: data outside a disk", ch_.connection().peer());
    if (m.position < end_ || m.position + m.data.size() > size_)
      fail(ErrorCategory::corrupt, "{}: data at {} (+{}) where {} bytes of {} were written", ch_.connection().peer(),
           m.position, m.data.size(), end_, size_);
    image_->write(m.position, m.data);
    end_ = m.position + m.data.size();
    since_checkpoint_ += m.data.size();
    disks_[name_].received += m.data.size();
  }

  void mark(uint64_t position) {
    if (!image_ || position < end_ || position > size_ || position < state_.position)
      fail(ErrorCategory::corrupt, "{}: progress mark {} out of order", ch_.connection().peer(), position);
    end_ = position;
    if (since_checkpoint_ < options_.checkpoint_bytes) return;
    checkpoint(position);
  }

  // The image's data below `position` on disk, then the record saying so.
  void checkpoint(uint64_t position) {
    image_->flush();
    File::open(part_, OpenMode::read_only).sync();
    state_.position = position;
    save_state();
    since_checkpoint_ = 0;
  }

  void end() {
    if (!image_) fail(ErrorCategory::corrupt, "{}: end outside a disk", ch_.connection().peer());
    image_->flush();
    image_.reset();
    File::open(part_, OpenMode::read_only).sync();
    const unsigned flags = options_.overwrite ? 0 : RENAME_NOREPLACE;
    if (::renameat2(AT_FDCWD, part_.c_str(), AT_FDCWD, target_.c_str(), flags) != 0)
      throw_errno(errno, "rename " + part_ + " to " + target_);
    sync_directory(options_.dir);
    state_.position = size_;
    state_.complete = true;
    save_state();
    ReceivedDisk& d = disks_[name_];
    d.file_bytes = File::open(target_, OpenMode::read_only).allocated_bytes();
    wire::Message stored;
    stored.type = wire::Type::stored;
    stored.position = d.file_bytes;
    ch_.send(wire::encode(stored));
    name_.clear();
  }

  void bye() {
    if (image_) fail(ErrorCategory::corrupt, "{}: bye before the end of {}", ch_.connection().peer(), name_);
    for (const auto& [name, d] : disks_) ::unlink(path(name, ".p2v-state").c_str());
    sync_directory(options_.dir);
    wire::Message ack;
    ack.type = wire::Type::bye_ack;
    ch_.send(wire::encode(ack), true);
  }

  void save_state() { write_file_atomic(state_path_, seal_state(state_)); }

  // After a lost connection: what was written stays (the record's position is
  // below it; the sender writes the same bytes again from there).
  void close_image() {
    if (!image_) return;
    try {
      image_->flush();
    } catch (const Error& e) {
      warn("{}: {}", part_, e.what());
    }
    image_.reset();
  }

  Channel& ch_;
  const ReceiveOptions& options_;
  std::map<std::string, ReceivedDisk>& disks_;
  const image::FormatDriver& driver_;
  std::unique_ptr<image::BlockDevice> image_;
  std::string name_, target_, part_, state_path_;
  DiskState state_;
  uint64_t size_ = 0, end_ = 0, since_checkpoint_ = 0;
};

}  // namespace

Receiver::Receiver(const HostPort& listen, ReceiveOptions options, Token token)
    : listener_(Listener::bind(listen)), options_(std::move(options)), token_(token) {
  if (!boost::filesystem::is_directory(options_.dir))
    fail(ErrorCategory::not_found, "directory {} does not exist", options_.dir);
  const std::string f = image::driver_for(options_.format).name();
  if (f != "qcow2" && f != "raw" && f != "vhdx")
    fail(ErrorCategory::usage, "p2v receive writes qcow2, raw or vhdx (formats it can reopen to resume), not {}", f);
  options_.format = f;
}

ReceiveResult Receiver::run() {
  const auto started = std::chrono::steady_clock::now();
  ReceiveResult result;
  std::map<std::string, ReceivedDisk> disks;
  for (;;) {
    std::optional<Connection> c = listener_.accept(std::chrono::seconds(3600));
    if (!c) continue;
    const std::string peer = c->peer();
    std::optional<Channel> ch;
    try {
      ch.emplace(Channel::server(std::move(*c), token_));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::interrupted) throw;
      ++result.refused;
      warn("{}", e.what());
      continue;
    }
    ch->connection().set_idle_timeout(options_.idle_timeout);
    ++result.sessions;
    note("{}: session {} started", peer, result.sessions);
    Session session(*ch, options_, disks);
    try {
      if (session.run()) break;
    } catch (const ConnectionLost& e) {
      ++result.lost;
      warn("{}; waiting for the sender to resume", e.what());
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::interrupted) session.refuse(e);
      throw;
    }
  }
  for (auto& [name, d] : disks) result.disks.push_back(d);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace arche::convert
