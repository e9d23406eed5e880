#include "image/vdi/vdi_format.h"

#include <algorithm>
#include <cstring>

#include "core/bytes.h"
#include "core/error.h"

namespace arche::image::vdi {

namespace {

foreign::Id128 read_id(ByteReader& r) {
  foreign::Id128 id{};
  auto b = r.bytes(16);
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

std::string c_string(std::span<const uint8_t> bytes) {
  std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return s.substr(0, s.find('\0'));
}

}  // namespace

Header parse_header(std::span<const uint8_t> bytes, const std::string& what) {
  ByteReader r(bytes, what);
  Header h;
  h.text = c_string(r.bytes(64));
  if (r.le32() != kSignature) fail(ErrorCategory::format, "{}: not a VDI image (signature 0xBEDA107F missing)", what);
  uint32_t version = r.le32();
  if (version >> 16 != 1)
    fail(ErrorCategory::unsupported, "{}: VDI version {}.{} (arche reads 1.1)", what, version >> 16, version & 0xffff);
  h.header_size = r.le32();
  if (h.header_size < kHeaderSizeV11 || h.header_size > 512 - kHeaderOffset)
    fail(ErrorCategory::format, "{}: VDI header size {} (expected 384 or 400)", what, h.header_size);
  uint32_t type = r.le32();
  if (type < 1 || type > 4) fail(ErrorCategory::format, "{}: VDI image type {} is unknown", what, type);
  h.type = static_cast<ImageType>(type);
  h.flags = r.le32();
  h.comment = c_string(r.bytes(256));
  h.blocks_offset = r.le32();
  h.data_offset = r.le32();
  h.legacy_cylinders = r.le32();
  h.legacy_heads = r.le32();
  h.legacy_sectors = r.le32();
  h.sector_size = r.le32();
  r.skip(4);
  h.disk_size = r.le64();
  h.block_size = r.le32();
  h.block_extra = r.le32();
  h.blocks = r.le32();
  h.blocks_allocated = r.le32();
  h.uuid_create = read_id(r);
  h.uuid_modify = read_id(r);
  h.uuid_linkage = read_id(r);
  h.uuid_parent_modify = read_id(r);
  if (h.header_size >= kHeaderSizeV11Plus) {
    h.lchs_cylinders = r.le32();
    h.lchs_heads = r.le32();
    h.lchs_sectors = r.le32();
    h.lchs_sector_size = r.le32();
  }
  if (h.type == ImageType::undo || h.type == ImageType::diff)
    fail(ErrorCategory::unsupported, "{}: VDI {} images (snapshots) are not supported; merge them in VirtualBox first",
         what, h.type == ImageType::diff ? "differencing" : "undo");
  if (h.block_size < 512 || h.block_size > (256u << 20) || (h.block_size & (h.block_size - 1)))
    fail(ErrorCategory::format, "{}: VDI block size {} is not a power of two between 512 B and 256 MiB", what,
         h.block_size);
  if (h.block_extra % 512 || h.block_extra > (1u << 20))
    fail(ErrorCategory::format, "{}: VDI per-block extra data of {} bytes", what, h.block_extra);
  if (h.blocks > kMaxBlocks) fail(ErrorCategory::format, "{}: VDI image with {} blocks (at most {})", what, h.blocks, kMaxBlocks);
  if (h.disk_size > uint64_t{h.blocks} * h.block_size)
    fail(ErrorCategory::format, "{}: VDI disk size {} exceeds its {} blocks of {} bytes", what, h.disk_size, h.blocks,
         h.block_size);
  if (h.blocks_allocated > h.blocks)
    fail(ErrorCategory::corrupt, "{}: VDI header counts {} allocated of {} blocks", what, h.blocks_allocated, h.blocks);
  if (h.blocks_offset < kHeaderOffset + h.header_size || h.blocks_offset % 512 || h.data_offset % 512 ||
      uint64_t{h.data_offset} < uint64_t{h.blocks_offset} + uint64_t{h.blocks} * 4)
    fail(ErrorCategory::format, "{}: VDI block map at {} and data at {} overlap the header or each other", what,
         h.blocks_offset, h.data_offset);
  if (!foreign::is_null(h.uuid_linkage) || !foreign::is_null(h.uuid_parent_modify))
    fail(ErrorCategory::unsupported, "{}: VDI image linked to a parent (differencing) is not supported", what);
  return h;
}

std::vector<uint8_t> encode_header(const Header& h) {
  ByteWriter w;
  std::string text = h.text.substr(0, 63);
  w.string(text);
  w.zeros(64 - text.size());
  w.le32(kSignature);
  w.le32(kVersion);
  w.le32(h.header_size);
  w.le32(static_cast<uint32_t>(h.type));
  w.le32(h.flags);
  std::string comment = h.comment.substr(0, 255);
  w.string(comment);
  w.zeros(256 - comment.size());
  w.le32(h.blocks_offset);
  w.le32(h.data_offset);
  w.le32(h.legacy_cylinders);
  w.le32(h.legacy_heads);
  w.le32(h.legacy_sectors);
  w.le32(h.sector_size);
  w.le32(0);
  w.le64(h.disk_size);
  w.le32(h.block_size);
  w.le32(h.block_extra);
  w.le32(h.blocks);
  w.le32(h.blocks_allocated);
  w.bytes(h.uuid_create);
  w.bytes(h.uuid_modify);
  w.bytes(h.uuid_linkage);
  w.bytes(h.uuid_parent_modify);
  if (h.header_size >= kHeaderSizeV11Plus) {
    w.le32(h.lchs_cylinders);
    w.le32(h.lchs_heads);
    w.le32(h.lchs_sectors);
    w.le32(h.lchs_sector_size);
  }
  w.zeros(512 - w.size());
  return w.take();
}

}  // namespace arche::image::vdi
