#include "backup/pack.h"

#include <cstring>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::backup {

namespace {

constexpr std::string_view kPackMagic = "ARCHPACK";
constexpr std::string_view kTrailerMagic = "ARCHPEND";
constexpr RecordVersion kPackVersion{1, 0};

// The footer's AAD: the pack header and the pack's id (its file name), so a footer
// cannot be moved to another pack, nor a pack to another name, unnoticed.
std::vector<uint8_t> footer_aad(std::span<const uint8_t> header, const Id& pack_id) {
  std::vector<uint8_t> aad(header.begin(), header.end());
  aad.insert(aad.end(), pack_id.bytes.begin(), pack_id.bytes.end());
  return aad;
}

}  // namespace

std::vector<uint8_t> encode_pack_header(const Id& repo_id) {
  ByteWriter w;
  w.string(kPackMagic);
  w.le16(kPackVersion.major);
  w.le16(kPackVersion.minor);
  w.le32(kPackHeaderSize);
  w.bytes(repo_id.bytes);
  return w.take();
}

void check_pack_header(std::span<const uint8_t> header, const Id& repo_id, const std::string& what) {
  if (header.size() < kPackHeaderSize || std::memcmp(header.data(), kPackMagic.data(), 8) != 0)
    fail(ErrorCategory::corrupt, "{}: not an arche pack (bad magic)", what);
  ByteReader r(header, what);
  r.skip(8);
  uint16_t major = r.le16();
  r.le16();
  uint32_t length = r.le32();
  if (major > kPackVersion.major)
    fail(ErrorCategory::unsupported, "{}: pack format {} is newer than this arche understands ({})", what, major,
         kPackVersion.major);
  if (major == 0 || length != kPackHeaderSize) fail(ErrorCategory::corrupt, "{}: bad pack header", what);
  if (Id::from(r.bytes(kIdSize)) != repo_id)
    fail(ErrorCategory::corrupt, "{}: pack belongs to another repository", what);
}

std::vector<uint8_t> encode_pack_trailer(const PackTrailer& t) {
  ByteWriter w;
  w.string(kTrailerMagic);
  w.le64(t.footer_offset);
  w.le32(t.footer_length);
  w.le32(t.count);
  w.le32(t.crc);
  w.le32(crc32c(w.buffer().data(), w.size()));
  return w.take();
}

PackTrailer decode_pack_trailer(std::span<const uint8_t> data, uint64_t pack_size, const std::string& what) {
  if (data.size() != kPackTrailerSize || std::memcmp(data.data(), kTrailerMagic.data(), 8) != 0)
    fail(ErrorCategory::corrupt, "{}: no pack trailer (truncated or damaged pack)", what);
  if (load_le32(data.data() + 28) != crc32c(data.data(), 28))
    fail(ErrorCategory::corrupt, "{}: pack trailer checksum mismatch", what);
  ByteReader r(data, what);
  r.skip(8);
  PackTrailer t;
  t.footer_offset = r.le64();
  t.footer_length = r.le32();
  t.count = r.le32();
  t.crc = r.le32();
  if (pack_size < kPackHeaderSize + kPackTrailerSize || t.footer_offset < kPackHeaderSize ||
      t.footer_offset % kFrameAlign || !range_within(t.footer_offset, t.footer_length, pack_size - kPackTrailerSize) ||
      t.footer_offset + t.footer_length != pack_size - kPackTrailerSize ||
      t.footer_length != kNonceSize + 4 + uint64_t{t.count} * kPackEntrySize + kTagSize)
    fail(ErrorCategory::corrupt, "{}: pack trailer describes an impossible layout", what);
  return t;
}

std::vector<uint8_t> encode_footer_entries(const std::vector<PackEntry>& entries) {
  ByteWriter w;
  w.le32(static_cast<uint32_t>(entries.size()));
  for (const PackEntry& e : entries) {
    w.bytes(e.id.bytes);
    w.u8(static_cast<uint8_t>(e.kind));
    w.le32(e.offset);
    w.le32(e.length);
    w.le32(e.raw_length);
  }
  return w.take();
}

std::vector<PackEntry> decode_footer_entries(std::span<const uint8_t> data, uint64_t frames_end,
                                             const std::string& what) {
  ByteReader r(data, what);
  uint32_t count = r.le32();
  if (uint64_t{count} * kPackEntrySize != r.remaining())
    fail(ErrorCategory::corrupt, "{}: pack index holds {} bytes for {} entries", what, r.remaining(), count);
  std::vector<PackEntry> entries(count);
  uint64_t next_free = kPackHeaderSize;
  for (PackEntry& e : entries) {
    e.id = Id::from(r.bytes(kIdSize));
    uint8_t kind = r.u8();
    if (kind < 1 || kind > 3) fail(ErrorCategory::corrupt, "{}: bad blob kind {}", what, kind);
    e.kind = static_cast<BlobKind>(kind);
    e.offset = r.le32();
    e.length = r.le32();
    e.raw_length = r.le32();
    if (e.offset < next_free || e.offset % kFrameAlign || e.length % kFrameAlign ||
        e.length < align_up(kFrameHeaderSize + 1 + kTagSize, kFrameAlign) || e.length > kMaxFrameSize ||
        !range_within(e.offset, e.length, frames_end) || e.raw_length > kMaxBlobSize)
      fail(ErrorCategory::corrupt, "{}: pack index entry for {} (offset {}, length {}) does not fit the pack", what,
           e.id.short_hex(), e.offset, e.length);
    next_free = uint64_t{e.offset} + e.length;
  }
  return entries;
}

std::string pack_relative_path(const Id& pack_id) {
  std::string hex = pack_id.hex();
  return "data/" + hex.substr(0, 2) + "/" + hex;
}

PackInfo read_pack_index(ObjectReader& file, const Id& pack_id, const Id& repo_id, const RepoKeys& keys) {
  const std::string what = "pack " + pack_id.short_hex();
  const uint64_t size = file.size();
  if (size < kPackHeaderSize + kPackTrailerSize || size > kMaxPackSize + (64u << 20))
    fail(ErrorCategory::corrupt, "{}: {} bytes is not a possible pack size (truncated?)", what, size);
  std::vector<uint8_t> header(kPackHeaderSize);
  file.read(0, header);
  check_pack_header(header, repo_id, what);
  std::vector<uint8_t> trailer(kPackTrailerSize);
  file.read(size - kPackTrailerSize, trailer);
  PackTrailer t = decode_pack_trailer(trailer, size, what);
  std::vector<uint8_t> footer(t.footer_length);
  file.read(t.footer_offset, footer);
  std::span<uint8_t> sealed = std::span(footer).subspan(kNonceSize);
  std::span<uint8_t> plain = sealed.first(sealed.size() - kTagSize);
  if (!aead_open(plain, sealed, footer_aad(header, pack_id), std::span(footer).first(kNonceSize), keys.encryption_key()))
    fail(ErrorCategory::corrupt, "{}: pack index failed authentication (damaged pack)", what);
  PackInfo info;
  info.id = pack_id;
  info.size = size;
  info.entries = decode_footer_entries(plain, t.footer_offset, what);
  if (info.entries.size() != t.count) fail(ErrorCategory::corrupt, "{}: trailer and index disagree", what);
  return info;
}

void scan_pack_frames(ObjectReader& file, const std::string& what,
                      const std::function<void(const FrameHeader&, uint64_t, std::span<uint8_t>)>& frame) {
  const uint64_t size = file.size();
  if (size > kMaxPackSize + (64u << 20)) fail(ErrorCategory::corrupt, "{}: too large for a pack", what);
  std::vector<uint8_t> data(size);
  file.read(0, data);
  // Frames start at multiples of 16; after a damaged header, look for the next one.
  for (uint64_t pos = kPackHeaderSize; pos + kFrameHeaderSize <= size;) {
    FrameHeader h;
    try {
      h = parse_frame_header(std::span(data).subspan(pos, kFrameHeaderSize), what);
    } catch (const Error&) {
      pos += kFrameAlign;
      continue;
    }
    if (!range_within(pos, h.frame_length(), size)) {
      pos += kFrameAlign;
      continue;
    }
    frame(h, pos, std::span(data).subspan(pos, h.frame_length()));
    pos += h.frame_length();
  }
}

PackWriter::PackWriter(Store& store, const Id& pack_id, const Id& repo_id, const RepoKeys& keys)
    : id_(pack_id),
      keys_(keys),
      header_(encode_pack_header(repo_id)),
      writer_(store.create(pack_relative_path(pack_id), WriteMode::create)) {
  writer_->append(header_);
  size_ = header_.size();
  crc_ = crc32c(header_.data(), header_.size());
}

uint32_t PackWriter::append(std::span<const uint8_t> frame, const Id& id, BlobKind kind, uint32_t raw_length) {
  if (frame.size() % kFrameAlign || size_ + frame.size() > kMaxPackSize)
    fail(ErrorCategory::internal, "pack {}: frame of {} bytes does not fit", id_.short_hex(), frame.size());
  const uint32_t offset = static_cast<uint32_t>(size_);
  writer_->append(frame);
  crc_ = crc32c(crc_, frame.data(), frame.size());
  size_ += frame.size();
  entries_.push_back({id, kind, offset, static_cast<uint32_t>(frame.size()), raw_length});
  return offset;
}

PackInfo PackWriter::finish() {
  std::vector<uint8_t> plain = encode_footer_entries(entries_);
  std::vector<uint8_t> footer(kNonceSize + plain.size() + kTagSize);
  random_nonce(std::span(footer).first(kNonceSize));
  aead_seal(std::span(footer).subspan(kNonceSize), plain, footer_aad(header_, id_), std::span(footer).first(kNonceSize),
            keys_.encryption_key());
  writer_->append(footer);
  crc_ = crc32c(crc_, footer.data(), footer.size());
  PackTrailer t{size_, static_cast<uint32_t>(footer.size()), static_cast<uint32_t>(entries_.size()), crc_};
  size_ += footer.size();
  std::vector<uint8_t> trailer = encode_pack_trailer(t);
  writer_->append(trailer);
  size_ += trailer.size();
  writer_->commit();
  writer_.reset();
  return {id_, size_, std::move(entries_)};
}

}  // namespace arche::backup
