#include "backup/repository.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cerrno>
#include <ctime>
#include <unordered_set>

#include "backup/object.h"
#include "backup/temp_files.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/log.h"

namespace fs = boost::filesystem;

namespace arche::backup {

namespace {

constexpr std::string_view kConfigMagic = "ARCHEREP";
constexpr RecordVersion kConfigVersion{1, 0};
constexpr std::string_view kIndexMagic = "ARCHEIDX";
constexpr RecordVersion kIndexVersion{1, 0};
constexpr size_t kMaxIndexPayload = size_t{4} << 30;
constexpr const char* kSubdirs[] = {"data", "index", "snapshots", "locks", "keys"};
constexpr size_t kMaxOpenPacks = 64;

std::vector<uint8_t> config_aad(const RepoConfigHeader& h) {
  ByteWriter w;
  w.string(kConfigMagic);
  w.le16(h.major);
  w.le16(h.minor);
  w.bytes(h.repo_id.bytes);
  w.le64(h.created);
  return w.take();
}

void make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw_errno(errno, "create directory " + path);
}

std::vector<uint8_t> slurp(const std::string& path, uint64_t limit) {
  File f = File::open(path, OpenMode::read_only);
  uint64_t size = f.size();
  if (size > limit) fail(ErrorCategory::corrupt, "{}: {} bytes is more than such a file can hold", path, size);
  std::vector<uint8_t> data(size);
  f.read_exact(0, data);
  return data;
}

// A new file only its owner may read (0600 whatever the umask), written durably.
void write_private_file(const std::string& path, std::span<const uint8_t> data) {
  PendingFile pending(path, false);
  {
    File f = File::open(pending.temp_path(), OpenMode::create_new);
    ::fchmod(f.fd(), 0600);
    f.write_all(0, data);
  }
  pending.commit(/*durable=*/true);
}

bool is_hex_name(const std::string& name, size_t length) {
  return name.size() == length && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}


}  // namespace

void validate_settings(const RepoSettings& s, ErrorCategory category) {
  auto power_of_two = [](uint64_t v) { return v && !(v & (v - 1)); };
  if (!power_of_two(s.image_chunk_size) || s.image_chunk_size < (64u << 10) || s.image_chunk_size > (4u << 20))
    fail(category, "image chunk size {} must be a power of two from 64 KiB to 4 MiB", s.image_chunk_size);
  if (s.cdc_min < (16u << 10) || s.cdc_min >= s.cdc_avg || s.cdc_avg >= s.cdc_max || s.cdc_max > (4u << 20) ||
      !power_of_two(s.cdc_avg))
    fail(category, "file chunk sizes {}/{}/{} must satisfy 16 KiB <= min < average < max <= 4 MiB, average a power of two",
         s.cdc_min, s.cdc_avg, s.cdc_max);
  if (s.compression_level < -7 || s.compression_level > 19)
    fail(category, "compression level {} outside -7..19", s.compression_level);
  if (s.pack_size < (1u << 20) || s.pack_size > kMaxPackSize - (8u << 20))
    fail(category, "pack size {} outside 1 MiB..24 MiB", s.pack_size);
}

std::vector<uint8_t> encode_config(const RepoConfigHeader& h, const RepoSettings& s, const RepoKeys& keys) {
  ByteWriter settings;
  settings.le32(s.image_chunk_size);
  settings.le32(s.cdc_min);
  settings.le32(s.cdc_avg);
  settings.le32(s.cdc_max);
  settings.le32(static_cast<uint32_t>(s.compression_level));
  settings.le32(s.pack_size);
  std::array<uint8_t, kNonceSize> nonce;
  random_fill(nonce);
  std::vector<uint8_t> sealed(settings.size() + kTagSize);
  aead_seal(sealed, settings.buffer(), config_aad(h), nonce, keys.encryption_key());
  ByteWriter w;
  w.bytes(h.repo_id.bytes);
  w.le64(h.created);
  w.bytes(nonce);
  w.le32(static_cast<uint32_t>(sealed.size()));
  w.bytes(sealed);
  return seal_record(kConfigMagic, {h.major, h.minor}, w.buffer());
}

RepoConfigHeader decode_config_header(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord rec = open_record(data, kConfigMagic, kConfigVersion.major, what);
  ByteReader r(rec.payload, what);
  RepoConfigHeader h;
  h.major = rec.version.major;
  h.minor = rec.version.minor;
  h.repo_id = Id::from(r.bytes(kIdSize));
  h.created = r.le64();
  return h;
}

RepoSettings decode_config_settings(std::span<const uint8_t> data, const RepoKeys& keys, const std::string& what) {
  RepoConfigHeader h = decode_config_header(data, what);
  OpenedRecord rec = open_record(data, kConfigMagic, kConfigVersion.major, what);
  ByteReader r(rec.payload, what);
  r.skip(kIdSize + 8);
  std::span<const uint8_t> nonce = r.bytes(kNonceSize);
  uint32_t length = r.le32();
  std::span<const uint8_t> sealed = r.bytes(length);
  if (length < kTagSize) fail(ErrorCategory::corrupt, "{}: settings truncated", what);
  std::vector<uint8_t> plain(length - kTagSize);
  if (!aead_open(plain, sealed, config_aad(h), nonce, keys.encryption_key()))
    fail(ErrorCategory::corrupt, "{}: settings failed authentication (damaged or altered)", what);
  ByteReader p(plain, what);
  RepoSettings s;
  s.image_chunk_size = p.le32();
  s.cdc_min = p.le32();
  s.cdc_avg = p.le32();
  s.cdc_max = p.le32();
  s.compression_level = static_cast<int32_t>(p.le32());
  s.pack_size = p.le32();
  validate_settings(s, ErrorCategory::corrupt);
  return s;
}

// ---- init / open -----------------------------------------------------------------

void Repository::init(const std::string& path, std::span<const uint8_t> passphrase, const InitOptions& options) {
  validate_settings(options.settings, ErrorCategory::usage);
  if (fs::exists(path) && !(fs::is_directory(path) && fs::is_empty(path)))
    fail(ErrorCategory::exists, "{} already exists and is not an empty directory", path);
  fs::path target = fs::absolute(path);
  std::string parent = target.parent_path().string();
  if (!fs::is_directory(parent)) fail(ErrorCategory::not_found, "directory {} does not exist", parent);

  // Built under a temporary name and renamed at the end: an interrupted init leaves
  // no half-made repository behind under the real name.
  std::string temp = (target.parent_path() / ("." + target.filename().string() + ".arche-tmp-" +
                                              std::to_string(::getpid()) + "-init"))
                         .string();
  fs::remove_all(temp);
  try {
    make_directory(temp);
    for (const char* sub : kSubdirs) make_directory(temp + "/" + sub);
    for (int i = 0; i < 256; ++i) make_directory(fmt::format("{}/data/{:02x}", temp, i));
    RepoConfigHeader h;
    h.repo_id = Id::random();
    h.created = static_cast<uint64_t>(std::time(nullptr));
    RepoKeys keys = RepoKeys::generate();
    KeySlot slot = make_key_slot(h.repo_id, keys.master(), passphrase, options.kdf);
    write_private_file(temp + "/keys/" + slot.name(), encode_key_slot(slot));
    write_private_file(temp + "/config", encode_config(h, options.settings, keys));
    for (int i = 0; i < 256; ++i) sync_directory(fmt::format("{}/data/{:02x}", temp, i));
    for (const char* sub : kSubdirs) sync_directory(temp + "/" + sub);
    sync_directory(temp);
    if (::rename(temp.c_str(), target.c_str()) != 0) throw_errno(errno, "rename " + temp + " to " + target.string());
    sync_directory(parent);
  } catch (...) {
    boost::system::error_code ec;
    fs::remove_all(temp, ec);
    throw;
  }
}

RepoConfigHeader Repository::read_header(const std::string& path) {
  std::string config = path + "/config";
  if (!fs::exists(config)) {
    if (!fs::exists(path)) fail(ErrorCategory::not_found, "repository {} does not exist", path);
    fail(ErrorCategory::format, "{} is not an arche repository (no config file)", path);
  }
  return decode_config_header(slurp(config, 1 << 20), config);
}

std::unique_ptr<Repository> Repository::open(const std::string& path, std::span<const uint8_t> passphrase) {
  crypto_init();
  std::unique_ptr<Repository> repo(new Repository());
  repo->root_ = fs::absolute(path).lexically_normal().string();
  while (repo->root_.size() > 1 && repo->root_.back() == '/') repo->root_.pop_back();
  repo->header_ = read_header(repo->root_);
  size_t tried = 0, damaged = 0;
  for (const std::string& name : repo->list_files("keys")) {
    KeySlot slot;
    try {
      slot = decode_key_slot(repo->read_file("keys", name), "key slot " + name);
    } catch (const Error& e) {
      warn("{}", e.what());
      ++damaged;
      continue;
    }
    if (slot.repo_id != repo->id()) continue;
    ++tried;
    SecretBytes master = unwrap_key_slot(slot, passphrase);
    if (master.size()) {
      repo->keys_ = std::make_unique<RepoKeys>(master.span());
      repo->opened_slot_ = name;
      break;
    }
  }
  if (!repo->keys_) {
    if (tried == 0)
      fail(ErrorCategory::crypto, "{}: no usable key slot in keys/{}", path, damaged ? " (the key files are damaged)" : "");
    if (tried == 1) fail(ErrorCategory::crypto, "wrong passphrase: the key slot of {} does not open with it", path);
    fail(ErrorCategory::crypto, "wrong passphrase: none of the {} key slots of {} opens with it", tried, path);
  }
  repo->settings_ = decode_config_settings(slurp(repo->root_ + "/config", 1 << 20), *repo->keys_, path + "/config");
  return repo;
}

// ---- files -----------------------------------------------------------------------

std::string Repository::path_of(std::string_view dir, const std::string& name) const {
  return root_ + "/" + std::string(dir) + "/" + name;
}

std::vector<std::string> Repository::list_files(std::string_view dir) const {
  std::vector<std::string> names;
  fs::path d = fs::path(root_) / std::string(dir);
  if (!fs::is_directory(d)) fail(ErrorCategory::corrupt, "{}: {}/ is missing", root_, dir);
  for (const fs::directory_entry& e : fs::directory_iterator(d)) {
    std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.') names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> Repository::read_file(std::string_view dir, const std::string& name) const {
  return slurp(path_of(dir, name), kMaxIndexPayload);
}

std::string Repository::write_content_file(std::string_view dir, std::span<const uint8_t> bytes) const {
  std::string name = content_hash(bytes).hex();
  std::string path = path_of(dir, name);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return name;  // the same bytes are there already
  PendingFile pending(path, false);
  {
    File f = File::open(pending.temp_path(), OpenMode::create_new);
    ::fchmod(f.fd(), 0600);  // only the owner reads a repository, whatever the umask
    f.write_all(0, bytes);
  }
  pending.commit(/*durable=*/true);
  return name;
}

void Repository::write_named_file(std::string_view dir, const std::string& name, std::span<const uint8_t> bytes,
                                  bool overwrite) const {
  PendingFile pending(path_of(dir, name), overwrite);
  {
    File f = File::open(pending.temp_path(), OpenMode::create_new);
    ::fchmod(f.fd(), 0600);  // only the owner reads a repository, whatever the umask
    f.write_all(0, bytes);
  }
  pending.commit(/*durable=*/true);
}

void Repository::remove_file(std::string_view dir, const std::string& name) const {
  std::string path = path_of(dir, name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(errno, "remove " + path);
  sync_directory(root_ + "/" + std::string(dir));
}

std::string Repository::pack_path(const Id& pack_id) const { return root_ + "/" + pack_relative_path(pack_id); }

std::vector<Id> Repository::list_packs() const {
  std::vector<Id> packs;
  for (int i = 0; i < 256; ++i) {
    fs::path d = fs::path(root_) / fmt::format("data/{:02x}", i);
    if (!fs::is_directory(d)) fail(ErrorCategory::corrupt, "{}: {} is missing", root_, d.string());
    for (const fs::directory_entry& e : fs::directory_iterator(d)) {
      std::string name = e.path().filename().string();
      if (is_hex_name(name, 2 * kIdSize)) packs.push_back(Id::from_hex(name));
    }
  }
  return packs;
}

size_t Repository::remove_dead_temp_files() const {
  size_t removed = 0;
  for (const char* sub : {"index", "snapshots", "locks", "keys"})
    removed += backup::remove_dead_temp_files(root_ + "/" + sub).size();
  for (int i = 0; i < 256; ++i) removed += backup::remove_dead_temp_files(fmt::format("{}/data/{:02x}", root_, i)).size();
  return removed;
}

// ---- index -----------------------------------------------------------------------

std::vector<PackInfo> Repository::read_index_file(const std::string& name) const {
  const std::string what = "index/" + name.substr(0, 8);
  OpenedObject o = open_object(*keys_, read_file("index", name), kIndexMagic, kIndexVersion.major, what,
                               kMaxIndexPayload);
  return decode_index_payload(o.payload, what);
}

std::vector<PackInfo> Repository::read_all_index_files(std::vector<std::string>* names) const {
  std::vector<PackInfo> all;
  for (const std::string& name : list_files("index")) {
    std::vector<PackInfo> packs = read_index_file(name);
    std::move(packs.begin(), packs.end(), std::back_inserter(all));
    if (names) names->push_back(name);
  }
  return all;
}

std::string Repository::write_index_file(const std::vector<PackInfo>& packs) const {
  std::vector<uint8_t> payload = encode_index_payload(packs);
  return write_content_file("index", seal_object(*keys_, kIndexMagic, kIndexVersion, payload, false));
}

void Repository::reset_index() {
  std::lock_guard lock(packs_mutex_);
  open_packs_.clear();
  index_.clear();
  index_files_.clear();
  unindexed_.clear();
  unreadable_index_.clear();
  unindexed_count_ = 0;
}

void Repository::load_index(bool adopt_unindexed) {
  reset_index();
  index_files_ = list_files("index");
  std::vector<Id> present = list_packs();
  std::unordered_set<Id, IdHash> on_disk(present.begin(), present.end());
  // Reserve from file sizes (45 bytes per entry on disk) so the vector never doubles.
  size_t upper = 0;
  for (const std::string& name : index_files_) {
    boost::system::error_code ec;
    uint64_t bytes = fs::file_size(path_of("index", name), ec);
    if (!ec) upper += static_cast<size_t>(bytes / kPackEntrySize);
  }
  index_.reserve(upper);
  std::unordered_set<Id, IdHash> indexed;
  size_t missing = 0;
  for (const std::string& name : index_files_) {
    std::vector<PackInfo> listed;
    try {
      listed = read_index_file(name);
    } catch (const Error& e) {
      // One damaged index file must not stop everything: its packs count as
      // unindexed (a backup adopts them), and the error says how to mend it.
      if (e.category() == ErrorCategory::not_found) continue;
      // A backup says so; a restore says it only if a chunk is then missing.
      if (adopt_unindexed) warn("{} (run: arche backup repair index)", e.what());
      unreadable_index_.push_back(name);
      continue;
    }
    for (const PackInfo& p : listed) {
      if (!indexed.insert(p.id).second) continue;
      // A pack the index lists but that is gone: forget its chunks, so a backup
      // stores them again instead of referring to data that does not exist.
      if (!on_disk.count(p.id)) {
        ++missing;
        continue;
      }
      index_.add_pack(p);
    }
  }
  if (missing)
    warn("{} pack{} listed in the index {} missing; their chunks count as absent (run: arche backup check)", missing,
         missing == 1 ? "" : "s", missing == 1 ? "is" : "are");
  unindexed_.clear();
  for (const Id& id : present) unindexed_count_ += !indexed.count(id);
  if (adopt_unindexed) {
    for (const Id& id : present) {
      if (indexed.count(id)) continue;
      try {
        File f = File::open(pack_path(id), OpenMode::read_only);
        PackInfo info = read_pack_index(f, id, header_.repo_id, *keys_);
        index_.add_pack(info);
        unindexed_.push_back(std::move(info));
      } catch (const Error& e) {
        warn("unindexed pack {} is unreadable and stays unused: {}", id.short_hex(), e.what());
      }
    }
    if (!unindexed_.empty())
      note("{} pack{} of an interrupted backup will be reused", unindexed_.size(), unindexed_.size() == 1 ? "" : "s");
  }
  index_.finalize();
}

// ---- blobs -----------------------------------------------------------------------

std::shared_ptr<File> Repository::open_pack(uint32_t pack_number) {
  std::lock_guard lock(packs_mutex_);
  auto it = open_packs_.find(pack_number);
  if (it != open_packs_.end()) return it->second;
  if (open_packs_.size() >= kMaxOpenPacks) open_packs_.clear();
  auto file = std::make_shared<File>(File::open(pack_path(index_.pack_id(pack_number)), OpenMode::read_only));
  open_packs_.emplace(pack_number, file);
  return file;
}

std::span<const uint8_t> Repository::read_blob(const Id& id, std::vector<uint8_t>& frame,
                                               std::vector<uint8_t>& scratch, const std::string& what) {
  std::optional<ChunkIndex::Location> where = index_.find(id);
  if (!where) fail_missing_chunk(id, what);
  const std::string where_text =
      fmt::format("{}: chunk {} in pack {}", what, id.short_hex(), index_.pack_id(where->pack).short_hex());
  frame.resize(where->length);
  try {
    open_pack(where->pack)->read_exact(where->offset, frame);
  } catch (const Error& e) {
    if (e.category() == ErrorCategory::format || e.category() == ErrorCategory::not_found)
      fail(ErrorCategory::corrupt, "{}: {}", where_text, e.what());
    throw;
  }
  return open_frame(*keys_, frame, &id, scratch, where_text);
}

void Repository::fail_missing_chunk(const Id& id, const std::string& what) const {
  if (unindexed_count_ || !unreadable_index_.empty())
    fail(ErrorCategory::corrupt,
         "{}: chunk {} is in no index file, and {} pack{} no readable index file lists (an index file deleted or "
         "damaged?): run `arche backup repair index`",
         what, id.short_hex(), unindexed_count_, unindexed_count_ == 1 ? "" : "s");
  fail(ErrorCategory::corrupt, "{}: chunk {} is not in the repository (a lost pack? run: arche backup check)", what,
       id.short_hex());
}

std::vector<uint8_t> Repository::read_blob(const Id& id, const std::string& what) {
  std::vector<uint8_t> frame, scratch;
  std::span<const uint8_t> plain = read_blob(id, frame, scratch, what);
  return std::vector<uint8_t>(plain.begin(), plain.end());
}

// ---- key slots -------------------------------------------------------------------

std::vector<std::pair<std::string, KeySlot>> Repository::key_slots() const {
  std::vector<std::pair<std::string, KeySlot>> slots;
  for (const std::string& name : list_files("keys"))
    slots.emplace_back(name, decode_key_slot(read_file("keys", name), "key slot " + name));
  return slots;
}

std::string Repository::add_key_slot(std::span<const uint8_t> passphrase, const KdfParams& kdf) const {
  KeySlot slot = make_key_slot(header_.repo_id, keys_->master(), passphrase, kdf);
  write_named_file("keys", slot.name(), encode_key_slot(slot), false);
  return slot.name();
}

void Repository::remove_key_slot(const std::string& name) const {
  std::vector<std::string> names = list_files("keys");
  if (std::find(names.begin(), names.end(), name) == names.end())
    fail(ErrorCategory::not_found, "no key slot {} in {}", name, root_);
  if (names.size() == 1) fail(ErrorCategory::usage, "refusing to remove the last key slot: the repository would be lost");
  remove_file("keys", name);
}

}  // namespace arche::backup
