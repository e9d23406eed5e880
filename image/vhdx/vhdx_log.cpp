#include "image/vhdx/vhdx_log.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::vhdx {

namespace {

constexpr uint32_t kEntrySignature = 0x65676f6c;  // "loge"
constexpr uint32_t kDataDescSignature = 0x63736564;  // "desc"
constexpr uint32_t kZeroDescSignature = 0x6f72657a;  // "zero"
constexpr uint32_t kDataSectorSignature = 0x61746164;  // "data"
constexpr size_t kEntryHeaderSize = 64;
constexpr size_t kDescriptorSize = 32;
// Logs are 1 MiB by default; the bound keeps a crafted header from making arche
// read gigabytes into memory.
constexpr uint64_t kMaxLogLength = 32 * MiB;
// A real log is checksummed about once over; a crafted one whose every sector
// claims to start a log-sized entry would cost slots x length. Past this many
// times the log's size, the log is refused as damaged.
constexpr uint64_t kMaxChecksumPasses = 4;  // also bounds the memory parsed entries hold

struct Entry {
  uint64_t offset = 0;  // in the log
  uint32_t length = 0;
  uint32_t tail = 0;
  uint64_t sequence = 0;
  uint64_t flushed_file_offset = 0, last_file_offset = 0;
  std::vector<LogWrite> writes;
};

// The entry starting at `start` of the circular log, or nullopt if it is not a
// valid entry of this log.
std::optional<Entry> parse_entry(const std::vector<uint8_t>& log, uint64_t start, const Id128& log_guid,
                                 uint64_t& checksummed) {
  const uint64_t n = log.size();
  auto byte_at = [&](uint64_t pos) { return log[(start + pos) % n]; };
  std::vector<uint8_t> head(kEntryHeaderSize);
  for (size_t i = 0; i < head.size(); ++i) head[i] = byte_at(i);
  ByteReader r(head, "log entry");
  if (r.le32() != kEntrySignature) return std::nullopt;
  const uint32_t checksum = r.le32();
  Entry e;
  e.offset = start;
  e.length = r.le32();
  e.tail = r.le32();
  e.sequence = r.le64();
  const uint32_t descriptors = r.le32();
  r.skip(4);
  Id128 guid{};
  auto g = r.bytes(16);
  std::copy(g.begin(), g.end(), guid.begin());
  e.flushed_file_offset = r.le64();
  e.last_file_offset = r.le64();
  if (guid != log_guid || e.sequence == 0 || e.length == 0 || e.length % kLogSector || e.length > n ||
      e.tail % kLogSector || e.tail >= n)
    return std::nullopt;
  const uint64_t desc_sectors = div_round_up(kEntryHeaderSize + uint64_t{descriptors} * kDescriptorSize, kLogSector);
  if (desc_sectors > e.length / kLogSector) return std::nullopt;

  checksummed += e.length;  // the caller bounds the total
  std::vector<uint8_t> bytes(e.length);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = byte_at(i);
  std::memset(bytes.data() + 4, 0, 4);
  if (crc32c(bytes.data(), bytes.size()) != checksum) return std::nullopt;

  uint64_t data_sector = desc_sectors;
  for (uint32_t d = 0; d < descriptors; ++d) {
    ByteReader dr(std::span<const uint8_t>(bytes).subspan(kEntryHeaderSize + d * kDescriptorSize, kDescriptorSize), "log descriptor");
    const uint32_t signature = dr.le32();
    const uint32_t trailing = dr.le32();
    const uint64_t leading_or_length = dr.le64();
    LogWrite w;
    w.offset = dr.le64();
    if (dr.le64() != e.sequence || w.offset % kLogSector) return std::nullopt;
    if (signature == kZeroDescSignature) {
      w.length = leading_or_length;
      if (w.length == 0 || w.length % kLogSector) return std::nullopt;
    } else if (signature == kDataDescSignature) {
      if (data_sector >= e.length / kLogSector) return std::nullopt;
      const uint8_t* s = bytes.data() + data_sector * kLogSector;
      if (load_le32(s) != kDataSectorSignature || load_le32(s + 4) != (e.sequence >> 32) ||
          load_le32(s + 4092) != (e.sequence & 0xffffffff))
        return std::nullopt;
      w.length = kLogSector;
      w.data.resize(kLogSector);
      store_le64(w.data.data(), leading_or_length);
      std::memcpy(w.data.data() + 8, s + 8, 4084);
      store_le32(w.data.data() + 4092, trailing);
      ++data_sector;
    } else {
      return std::nullopt;
    }
    e.writes.push_back(std::move(w));
  }
  return e;
}

}  // namespace

std::optional<LogReplay> read_log(const File& file, const Header& header, const std::string& what) {
  if (foreign::is_null(header.log_guid)) return std::nullopt;
  if (header.log_length == 0 || header.log_length % kMiB || header.log_offset % kMiB || header.log_offset < kMiB ||
      header.log_length > kMaxLogLength || !range_within(header.log_offset, header.log_length, file.size()))
    fail(ErrorCategory::corrupt, "{}: VHDX log ({} bytes at 0x{:x}) is misplaced, too large or outside the file", what,
         header.log_length, header.log_offset);
  std::vector<uint8_t> log(header.log_length);
  file.read_exact(header.log_offset, log);

  const uint64_t slots = log.size() / kLogSector;
  uint64_t checksummed = 0;
  std::vector<std::optional<Entry>> parsed(slots);
  std::vector<bool> tried(slots, false);
  auto entry_at = [&](uint64_t offset) -> const std::optional<Entry>& {
    uint64_t slot = offset / kLogSector;
    if (!tried[slot]) {
      parsed[slot] = parse_entry(log, offset, header.log_guid, checksummed);
      tried[slot] = true;
    }
    if (checksummed > kMaxChecksumPasses * log.size())
      fail(ErrorCategory::corrupt, "{}: VHDX log has too many overlapping entries to be a real log", what);
    return parsed[slot];
  };

  // Each start walks at most one chain of slots: slots^2 cheap steps at worst
  // (8192^2 for the largest log arche accepts).
  std::vector<const Entry*> best;
  for (uint64_t start = 0; start < log.size(); start += kLogSector) {
    if (!entry_at(start)) continue;
    std::vector<const Entry*> chain{&*entry_at(start)};
    uint64_t covered = chain.back()->length;
    while (covered < log.size()) {
      uint64_t next = (chain.back()->offset + chain.back()->length) % log.size();
      const std::optional<Entry>& e = entry_at(next);
      if (!e || e->sequence != chain.back()->sequence + 1 || covered + e->length > log.size()) break;
      chain.push_back(&*e);
      covered += e->length;
    }
    // A sequence is complete when its newest entry's tail names its first entry.
    if (chain.back()->tail != start) continue;
    if (best.empty() || chain.back()->sequence > best.back()->sequence) best = chain;
  }
  if (best.empty()) return std::nullopt;

  LogReplay replay;
  replay.entries = best.size();
  replay.first_sequence = best.front()->sequence;
  replay.last_sequence = best.back()->sequence;
  replay.flushed_file_offset = best.back()->flushed_file_offset;
  replay.last_file_offset = best.back()->last_file_offset;
  for (const Entry* e : best)
    for (const LogWrite& w : e->writes) {
      if (w.offset > (1ull << 50) || w.length > (1ull << 50))
        fail(ErrorCategory::corrupt, "{}: VHDX log writes to an impossible offset 0x{:x}", what, w.offset);
      replay.writes.push_back(w);
    }
  return replay;
}

void replay_into_file(const File& file, const LogReplay& replay) {
  static const std::vector<uint8_t> zeros(1 * MiB, 0);
  for (const LogWrite& w : replay.writes) {
    if (!w.data.empty()) {
      file.write_all(w.offset, w.data);
      continue;
    }
    for (uint64_t done = 0; done < w.length;) {
      uint64_t n = std::min<uint64_t>(zeros.size(), w.length - done);
      file.write_all(w.offset + done, std::span(zeros.data(), n));
      done += n;
    }
  }
  if (file.size() < replay.last_file_offset) file.truncate(replay.last_file_offset);
}

void overlay(const LogReplay& replay, uint64_t offset, std::span<uint8_t> out) {
  const uint64_t end = offset + out.size();
  for (const LogWrite& w : replay.writes) {
    const uint64_t from = std::max(offset, w.offset), to = std::min(end, w.offset + w.length);
    if (from >= to) continue;
    if (w.data.empty()) std::memset(out.data() + (from - offset), 0, to - from);
    else std::memcpy(out.data() + (from - offset), w.data.data() + (from - w.offset), to - from);
  }
}

std::vector<uint8_t> encode_log_entry(uint64_t sequence, const Id128& log_guid, uint32_t tail,
                                      const std::vector<LogWrite>& writes, uint64_t flushed_file_offset,
                                      uint64_t last_file_offset) {
  size_t data_count = 0;
  for (const LogWrite& w : writes) data_count += !w.data.empty();
  const uint64_t desc_sectors = div_round_up(kEntryHeaderSize + writes.size() * kDescriptorSize, kLogSector);
  const uint64_t length = (desc_sectors + data_count) * kLogSector;
  std::vector<uint8_t> out(length, 0);
  ByteWriter h;
  h.le32(kEntrySignature);
  h.le32(0);
  h.le32(static_cast<uint32_t>(length));
  h.le32(tail);
  h.le64(sequence);
  h.le32(static_cast<uint32_t>(writes.size()));
  h.le32(0);
  h.bytes(log_guid);
  h.le64(flushed_file_offset);
  h.le64(last_file_offset);
  std::memcpy(out.data(), h.buffer().data(), h.size());
  uint64_t sector = desc_sectors;
  for (size_t d = 0; d < writes.size(); ++d) {
    const LogWrite& w = writes[d];
    uint8_t* desc = out.data() + kEntryHeaderSize + d * kDescriptorSize;
    if (w.data.empty()) {
      store_le32(desc, kZeroDescSignature);
      store_le64(desc + 8, w.length);
    } else {
      store_le32(desc, kDataDescSignature);
      store_le32(desc + 4, load_le32(w.data.data() + 4092));
      store_le64(desc + 8, load_le64(w.data.data()));
      uint8_t* s = out.data() + sector * kLogSector;
      store_le32(s, kDataSectorSignature);
      store_le32(s + 4, static_cast<uint32_t>(sequence >> 32));
      std::memcpy(s + 8, w.data.data() + 8, 4084);
      store_le32(s + 4092, static_cast<uint32_t>(sequence));
      ++sector;
    }
    store_le64(desc + 16, w.offset);
    store_le64(desc + 24, sequence);
  }
  store_le32(out.data() + 4, crc32c(out.data(), out.size()));
  return out;
}

}  // namespace arche::image::vhdx
