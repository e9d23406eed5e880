#include "image/vmdk/vmdk_format.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>

#include "core/bytes.h"
#include "core/compress.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/units.h"

namespace arche::image::vmdk {

namespace {

constexpr size_t kHeaderBytes = 512;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool parse_u64(std::string_view s, int base, uint64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

// Splits "RW 2048 SPARSE "name with spaces.vmdk" 0" into tokens; a quoted token
// keeps its spaces. Returns false on an unterminated quote.
bool tokenize(std::string_view line, std::vector<std::string>& out) {
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    if (line[i] == '"') {
      size_t end = line.find('"', i + 1);
      if (end == std::string_view::npos) return false;
      out.emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t end = i;
      while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
      out.emplace_back(line.substr(i, end - i));
      i = end;
    }
  }
  return true;
}

std::optional<Access> parse_access(std::string_view s) {
  if (s == "RW") return Access::rw;
  if (s == "RDONLY") return Access::rdonly;
  if (s == "NOACCESS") return Access::noaccess;
  return std::nullopt;
}

std::optional<ExtentType> parse_extent_type(std::string_view s) {
  if (s == "SPARSE") return ExtentType::sparse;
  if (s == "FLAT") return ExtentType::flat;
  if (s == "ZERO") return ExtentType::zero;
  if (s == "VMFS") return ExtentType::vmfs;
  if (s == "VMFSSPARSE") return ExtentType::vmfs_sparse;
  if (s == "VMFSRDM") return ExtentType::vmfs_rdm;
  if (s == "VMFSRAW") return ExtentType::vmfs_raw;
  if (s == "SESPARSE") return ExtentType::se_sparse;
  return std::nullopt;
}

ExtentLine parse_extent_line(std::string_view line, const std::string& what) {
  std::vector<std::string> t;
  auto bad = [&](const char* why) -> ExtentLine {
    fail(ErrorCategory::format, "{}: invalid extent line '{}' ({})", what, std::string(line.substr(0, 200)), why);
  };
  if (!tokenize(line, t)) return bad("unterminated quote");
  if (t.size() < 3) return bad("expected ACCESS SIZE TYPE [\"FILE\" [OFFSET]]");
  ExtentLine e;
  e.access = *parse_access(t[0]);
  if (!parse_u64(t[1], 10, &e.sectors) || e.sectors == 0) return bad("size must be a positive number of sectors");
  if (e.sectors > (1ull << 54)) return bad("size is too large");
  auto type = parse_extent_type(t[2]);
  if (!type) return bad("unknown extent type");
  e.type = *type;
  if (e.type == ExtentType::zero) {
    if (t.size() > 3) return bad("a ZERO extent has no file");
    return e;
  }
  if (t.size() < 4 || t[3].empty()) return bad("missing file name");
  e.filename = t[3];
  if (e.filename.find('\0') != std::string::npos) return bad("file name contains NUL");
  if (t.size() >= 5) {
    if (!parse_u64(t[4], 10, &e.offset) || e.offset > (1ull << 54)) return bad("invalid offset");
    if (e.type != ExtentType::flat && e.type != ExtentType::vmfs && e.type != ExtentType::vmfs_raw &&
        e.type != ExtentType::vmfs_rdm)
      return bad("only flat extents have an offset");
  }
  if (t.size() > 5) return bad("unexpected fields after the offset");
  if (e.type == ExtentType::flat && t.size() < 5) return bad("a FLAT extent needs an offset");
  return e;
}

}  // namespace

// ---- header --------------------------------------------------------------------

uint64_t SparseHeader::gd_entries() const {
  const uint64_t coverage_sectors = uint64_t{gtes_per_gt} * grain_size;
  return coverage_sectors ? div_round_up(capacity, coverage_sectors) : 0;
}

SparseHeader parse_sparse_header(std::span<const uint8_t> sector, const std::string& what) {
  ByteReader r(sector, what + " sparse header");
  if (r.le32() != kSparseMagic) fail(ErrorCategory::format, "{}: not a VMDK sparse extent (bad magic)", what);
  SparseHeader h;
  h.version = r.le32();
  h.flags = r.le32();
  h.capacity = r.le64();
  h.grain_size = r.le64();
  h.descriptor_offset = r.le64();
  h.descriptor_size = r.le64();
  h.gtes_per_gt = r.le32();
  h.rgd_offset = r.le64();
  h.gd_offset = r.le64();
  h.overhead = r.le64();
  h.unclean_shutdown = r.u8();
  std::span<const uint8_t> check = r.bytes(4);
  h.newline_bytes_ok = check[0] == '\n' && check[1] == ' ' && check[2] == '\r' && check[3] == '\n';
  h.compress_algorithm = r.le16();

  if (h.version < 1 || h.version > 3)
    fail(ErrorCategory::unsupported, "{}: VMDK sparse extent version {} is not supported (1 to 3 are)", what, h.version);
  if ((h.flags & kFlagNewlineTest) && !h.newline_bytes_ok)
    fail(ErrorCategory::corrupt, "{}: the header's newline check bytes are damaged (file transferred in text mode?)",
         what);
  if (!is_power_of_two(h.grain_size) || h.grain_size > kMaxGrainSectors)
    fail(ErrorCategory::format, "{}: grain size of {} sectors is invalid (a power of two up to {} is expected)", what,
         h.grain_size, kMaxGrainSectors);
  if (h.gtes_per_gt == 0 || h.gtes_per_gt > kMaxGtesPerGt)
    fail(ErrorCategory::format, "{}: {} entries per grain table is invalid (1 to {} expected)", what, h.gtes_per_gt,
         kMaxGtesPerGt);
  if (h.capacity > kMaxSparseSectors)
    fail(ErrorCategory::format, "{}: capacity of {} sectors is beyond what a sparse extent can address", what,
         h.capacity);
  if (h.compress_algorithm != kCompressNone && h.compress_algorithm != kCompressDeflate)
    fail(ErrorCategory::unsupported, "{}: compression algorithm {} is not supported (only deflate is)", what,
         h.compress_algorithm);
  if (h.descriptor_size > kMaxDescriptorBytes / kSector)
    fail(ErrorCategory::format, "{}: embedded descriptor of {} sectors is too large", what, h.descriptor_size);
  return h;
}

std::vector<uint8_t> encode_sparse_header(const SparseHeader& h) {
  ByteWriter w;
  w.le32(kSparseMagic);
  w.le32(h.version);
  w.le32(h.flags);
  w.le64(h.capacity);
  w.le64(h.grain_size);
  w.le64(h.descriptor_offset);
  w.le64(h.descriptor_size);
  w.le32(h.gtes_per_gt);
  w.le64(h.rgd_offset);
  w.le64(h.gd_offset);
  w.le64(h.overhead);
  w.u8(h.unclean_shutdown);
  w.u8('\n');
  w.u8(' ');
  w.u8('\r');
  w.u8('\n');
  w.le16(h.compress_algorithm);
  w.pad_to(kHeaderBytes);
  return w.take();
}

Marker parse_marker(std::span<const uint8_t> bytes) {
  ByteReader r(bytes, "vmdk marker");
  Marker m;
  m.value = r.le64();
  m.size = r.le32();
  m.type = r.le32();
  return m;
}

std::vector<uint8_t> encode_metadata_marker(MarkerType type, uint64_t sectors) {
  ByteWriter w;
  w.le64(sectors);
  w.le32(0);
  w.le32(static_cast<uint32_t>(type));
  w.pad_to(kSector);
  return w.take();
}

// ---- descriptor ----------------------------------------------------------------

const char* to_string(Access a) {
  switch (a) {
    case Access::rw: return "RW";
    case Access::rdonly: return "RDONLY";
    case Access::noaccess: return "NOACCESS";
  }
  return "?";
}

const char* to_string(ExtentType t) {
  switch (t) {
    case ExtentType::sparse: return "SPARSE";
    case ExtentType::flat: return "FLAT";
    case ExtentType::zero: return "ZERO";
    case ExtentType::vmfs: return "VMFS";
    case ExtentType::vmfs_sparse: return "VMFSSPARSE";
    case ExtentType::vmfs_rdm: return "VMFSRDM";
    case ExtentType::vmfs_raw: return "VMFSRAW";
    case ExtentType::se_sparse: return "SESPARSE";
  }
  return "?";
}

std::optional<std::string> Descriptor::ddb_value(std::string_view key) const {
  for (const auto& [k, v] : ddb)
    if (iequals(k, key)) return v;
  return std::nullopt;
}

uint64_t Descriptor::total_sectors() const {
  uint64_t total = 0;
  for (const ExtentLine& e : extents) total += e.sectors;
  return total;
}

Descriptor parse_descriptor(std::string_view text, const std::string& what) {
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
  if (text.size() > kMaxDescriptorBytes)
    fail(ErrorCategory::format, "{}: VMDK descriptor is larger than {} bytes", what, kMaxDescriptorBytes);
  Descriptor d;
  bool have_version = false, have_create_type = false;
  uint64_t total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line.front() == '#') continue;

    size_t space = line.find_first_of(" \t");
    if (space != std::string_view::npos && parse_access(line.substr(0, space))) {
      if (d.extents.size() >= kMaxExtents) fail(ErrorCategory::format, "{}: more than {} extents", what, kMaxExtents);
      d.extents.push_back(parse_extent_line(line, what));
      total += d.extents.back().sectors;
      if (total > (1ull << 54)) fail(ErrorCategory::format, "{}: the extents add up to an impossible size", what);
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      fail(ErrorCategory::format, "{}: invalid VMDK descriptor line '{}'", what, std::string(line.substr(0, 200)));
    std::string key(trim(line.substr(0, eq)));
    std::string_view raw_value = trim(line.substr(eq + 1));
    std::string value(unquote(raw_value));
    if (key.empty()) fail(ErrorCategory::format, "{}: descriptor line '{}' has no key", what, std::string(line.substr(0, 200)));
    if (key.rfind("ddb.", 0) == 0) {
      d.ddb.emplace_back(key, value);
    } else if (key == "version") {
      uint64_t v;
      if (!parse_u64(value, 10, &v) || v < 1 || v > 3)
        fail(ErrorCategory::unsupported, "{}: VMDK descriptor version '{}' is not supported", what, value);
      d.version = static_cast<uint32_t>(v);
      have_version = true;
    } else if (key == "CID" || key == "parentCID") {
      uint64_t v;
      if (!parse_u64(value, 16, &v) || v > 0xffffffff)
        fail(ErrorCategory::format, "{}: invalid {} '{}' in the VMDK descriptor", what, key, value);
      (key == "CID" ? d.cid : d.parent_cid) = static_cast<uint32_t>(v);
    } else if (key == "createType") {
      d.create_type = value;
      have_create_type = true;
    } else if (key == "parentFileNameHint") {
      if (!value.empty()) d.parent_hint = value;
    } else {
      d.other.emplace_back(key, value);
    }
  }
  if (!have_version && !have_create_type && d.extents.empty())
    fail(ErrorCategory::format, "{}: not a VMDK descriptor (no version, createType or extents)", what);
  if (!have_create_type) fail(ErrorCategory::format, "{}: VMDK descriptor has no createType", what);
  if (d.extents.empty()) fail(ErrorCategory::format, "{}: VMDK descriptor names no extents", what);
  return d;
}

std::string encode_descriptor(const Descriptor& d) {
  std::string out = "# Disk DescriptorFile\n";
  out += fmt::format("version={}\n", d.version);
  for (const auto& [k, v] : d.other)
    if (k == "encoding") out += fmt::format("{}=\"{}\"\n", k, v);
  out += fmt::format("CID={:08x}\nparentCID={:08x}\n", d.cid, d.parent_cid);
  for (const auto& [k, v] : d.other)
    if (k != "encoding") out += fmt::format("{}=\"{}\"\n", k, v);
  out += fmt::format("createType=\"{}\"\n", d.create_type);
  if (d.parent_hint) out += fmt::format("parentFileNameHint=\"{}\"\n", *d.parent_hint);
  out += "\n# Extent description\n";
  for (const ExtentLine& e : d.extents) {
    out += fmt::format("{} {} {}", to_string(e.access), e.sectors, to_string(e.type));
    if (e.type != ExtentType::zero) out += fmt::format(" \"{}\"", e.filename);
    if (e.type == ExtentType::flat || e.offset) out += fmt::format(" {}", e.offset);
    out += "\n";
  }
  out += "\n# The Disk Data Base\n#DDB\n\n";
  for (const auto& [k, v] : d.ddb) out += fmt::format("{} = \"{}\"\n", k, v);
  return out;
}

uint32_t random_content_id() {
  std::random_device rd;
  for (;;) {
    uint32_t v = rd();
    if (v < 0xfffffffe) return v;
  }
}

std::string replace_cid(std::string_view text, uint32_t cid) {
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
  std::string out;
  out.reserve(text.size() + 16);
  bool done = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(pos, end - pos);
    std::string_view t = trim(line);
    size_t eq = t.find('=');
    if (!done && eq != std::string_view::npos && trim(t.substr(0, eq)) == "CID") {
      out += fmt::format("CID={:08x}{}", cid, nl == std::string_view::npos ? "" : "\n");
      done = true;
    } else {
      out += line;
    }
    pos = end;
  }
  if (!done) fail(ErrorCategory::format, "VMDK descriptor has no CID line to update");
  return out;
}

bool looks_like_descriptor(std::span<const uint8_t> head) {
  std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
  // Blank lines and comments may come first; then a key of the header section.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    if (!line.empty() && line.front() != '#') {
      return line.rfind("version", 0) == 0 || line.rfind("CID", 0) == 0 || line.rfind("encoding", 0) == 0 ||
             line.rfind("createType", 0) == 0;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

// ---- grains ----------------------------------------------------------------------

std::vector<uint8_t> compress_grain(std::span<const uint8_t> grain, int level) {
  return compress::compress(compress::Codec::zlib, level, grain);
}

size_t decompress_grain(std::span<const uint8_t> in, std::span<uint8_t> out) {
  return compress::decompress_into(compress::Codec::zlib, in, out, compress::Expect::at_most, "compressed grain");
}

}  // namespace arche::image::vmdk
