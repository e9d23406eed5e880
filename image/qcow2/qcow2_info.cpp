#include "image/qcow2/qcow2_info.h"

#include <cstring>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "core/units.h"
#include "image/qcow2/qcow2_driver.h"

namespace arche::image::qcow2 {

namespace {

// LUKS1 (the format qemu writes into qcow2): the fixed part of the header and its
// eight key slots, big-endian.
constexpr uint8_t kLuksMagic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
constexpr size_t kLuksKeySlots = 8;
constexpr uint32_t kLuksSlotActive = 0x00ac71f3;
constexpr uint64_t kLuksSector = 512;
constexpr size_t kLuksHeaderBytes = 208 + kLuksKeySlots * 48;

std::string fixed_string(std::span<const uint8_t> field) {
  const char* p = reinterpret_cast<const char*>(field.data());
  return std::string(p, strnlen(p, field.size()));
}

Json describe_luks(const File& file, const EncryptionExtension& where) {
  const std::string what = file.path() + ": LUKS header";
  if (where.length < kLuksHeaderBytes || !range_within(where.offset, kLuksHeaderBytes, file.size()))
    fail(ErrorCategory::format, "{} ({} bytes at offset {}) does not fit in the file", what, where.length,
         where.offset);
  std::vector<uint8_t> buf(kLuksHeaderBytes);
  file.read_exact(where.offset, buf);
  ByteReader r(buf, what);
  if (std::memcmp(r.bytes(6).data(), kLuksMagic, 6) != 0) fail(ErrorCategory::format, "{}: no LUKS magic", what);
  const uint16_t version = r.be16();
  const std::string cipher = fixed_string(r.bytes(32));
  const std::string mode = fixed_string(r.bytes(32));
  const std::string hash = fixed_string(r.bytes(32));
  const uint32_t payload_sectors = r.be32();
  const uint32_t key_bytes = r.be32();
  r.skip(20 + 32);  // master key digest and its salt
  const uint32_t master_key_iterations = r.be32();
  const std::string uuid = fixed_string(r.bytes(40));
  unsigned active = 0;
  for (size_t i = 0; i < kLuksKeySlots; ++i) {
    if (r.be32() == kLuksSlotActive) ++active;
    r.skip(44);
  }
  // "xts-plain64" is mode xts with IV generator plain64; "cbc-essiv:sha256" adds
  // the IV hash. XTS splits the key in two halves, so aes with 64 key bytes is aes-256.
  const size_t dash = mode.find('-');
  const std::string cipher_mode = mode.substr(0, dash);
  std::string ivgen = dash == std::string::npos ? "" : mode.substr(dash + 1);
  std::string ivgen_hash;
  if (size_t colon = ivgen.find(':'); colon != std::string::npos) {
    ivgen_hash = ivgen.substr(colon + 1);
    ivgen.resize(colon);
  }
  const uint32_t cipher_bits = (cipher_mode == "xts" ? key_bytes / 2 : key_bytes) * 8;
  return Json{{"format", "luks"},
              {"version", version},
              {"cipher-alg", cipher + "-" + std::to_string(cipher_bits)},
              {"cipher-mode", cipher_mode},
              {"ivgen-alg", or_null(ivgen)},
              {"ivgen-hash-alg", or_null(ivgen_hash)},
              {"hash-alg", hash},
              {"uuid", uuid},
              {"payload-offset", uint64_t{payload_sectors} * kLuksSector},
              {"master-key-iters", master_key_iterations},
              {"active-key-slots", active}};
}

// Everything info shows; every I/O is refused.
class EncryptedImage final : public BlockDevice {
 public:
  EncryptedImage(std::string path, ImageInfo info, uint64_t cluster_size)
      : path_(std::move(path)), info_(std::move(info)), cluster_size_(cluster_size) {}

  uint64_t size() const override { return info_.virtual_size; }
  bool writable() const override { return false; }
  std::string format() const override { return "qcow2"; }
  std::string filename() const override { return path_; }
  void read(uint64_t, std::span<uint8_t>) override { refuse(); }
  void write(uint64_t, std::span<const uint8_t>) override { refuse(); }
  void write_zeroes(uint64_t, uint64_t, bool) override { refuse(); }
  void discard(uint64_t, uint64_t) override { refuse(); }
  void flush() override {}
  LayerStatus layer_status(uint64_t, uint64_t) override { refuse(); }
  uint64_t granularity() const override { return cluster_size_; }
  ImageInfo info() const override { return info_; }

 private:
  [[noreturn]] void refuse() const {
    Header h;
    h.crypt_method = info_.format_specific["encrypt"]["format"] == "luks" ? kCryptLuks : kCryptAes;
    refuse_encrypted(h, path_);
    fail(ErrorCategory::internal, "{}: encrypted image not refused", path_);
  }

  std::string path_;
  ImageInfo info_;
  uint64_t cluster_size_;
};

}  // namespace

ImageInfo describe_image(const File& file, const Header& h, const std::vector<Snapshot>& snapshots,
                         const std::string& backing_path) {
  ImageInfo i;
  i.filename = file.path();
  i.format = "qcow2";
  i.virtual_size = h.size;
  i.actual_size = file.allocated_bytes();
  i.cluster_size = h.cluster_size();
  if (!h.backing_file.empty()) {
    i.backing_file = h.backing_file;
    i.backing_format = h.backing_format;
    i.full_backing_file = backing_path;
  }
  i.dirty = h.incompatible_features & kIncompatDirty;
  i.encrypted = h.crypt_method != kCryptNone;
  i.format_specific = Json{
      {"compat", h.version == 2 ? "0.10" : "1.1"},
      {"compression-type", h.compression_type == CompressionType::zstd ? "zstd" : "zlib"},
      {"lazy-refcounts", static_cast<bool>(h.compatible_features & kCompatLazyRefcounts)},
      {"refcount-bits", h.refcount_bits()},
      {"corrupt", static_cast<bool>(h.incompatible_features & kIncompatCorrupt)},
      {"extended-l2", false},
  };
  if (h.bitmaps) i.format_specific["bitmaps"] = h.bitmaps->nb_bitmaps;
  if (i.encrypted) i.format_specific["encrypt"] = describe_encryption(file, h);
  for (const Snapshot& s : snapshots) {
    Json j{{"id", s.id},
           {"name", s.name},
           {"vm-state-size", s.vm_state_size},
           {"date", rfc3339(s.date_sec)},
           {"date-sec", s.date_sec},
           {"date-nsec", s.date_nsec},
           {"vm-clock-nsec", s.vm_clock_nsec},
           {"disk-size", or_null(s.disk_size)}};
    i.snapshots.push_back(std::move(j));
  }
  return i;
}

Json describe_encryption(const File& file, const Header& h) {
  if (h.crypt_method == kCryptAes) return Json{{"format", "aes"}};
  return describe_luks(file, *h.encryption);
}

std::unique_ptr<BlockDevice> open_encrypted_for_info(const std::string& path, const OpenOptions& options) {
  File file = File::open(path, OpenMode::read_only);
  lock_image_file(file, options);
  Header h = read_header(file);
  if (h.crypt_method == kCryptNone) return nullptr;
  std::string backing = h.backing_file.empty() ? "" : resolve_backing_path(path, h.backing_file);
  ImageInfo info = describe_image(file, h, read_snapshots(file, h, nullptr), backing);
  return std::make_unique<EncryptedImage>(path, std::move(info), h.cluster_size());
}

}  // namespace arche::image::qcow2
