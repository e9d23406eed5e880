#include "backup/repository.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>
#include <unordered_set>

#include "backup/deletions.h"
#include "backup/object.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"

namespace arche::backup {

namespace {

constexpr std::string_view kConfigMagic = "ARCHEREP";
constexpr RecordVersion kConfigVersion{1, 0};
constexpr std::string_view kIndexMagic = "ARCHEIDX";
constexpr RecordVersion kIndexVersion{1, 0};
constexpr size_t kMaxIndexPayload = size_t{4} << 30;
constexpr uint64_t kMaxConfigSize = 1 << 20;
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

namespace {

// An init that was interrupted leaves a key slot and no config: that is redone.
void require_empty_store(Store& store) {
  if (store.stat("config")) fail(ErrorCategory::exists, "{} is a repository already", store.location());
  std::vector<ObjectInfo> present = store.list("");
  for (const ObjectInfo& o : present)
    if (o.name.compare(0, 5, "keys/") != 0)
      fail(ErrorCategory::exists, "{} is not empty ({}); a repository needs a place of its own", store.location(), o.name);
  for (const ObjectInfo& o : present) store.remove(o.name);
}

}  // namespace

void Repository::init(Store& store, std::span<const uint8_t> passphrase, const InitOptions& options) {
  validate_settings(options.settings, ErrorCategory::usage);
  require_empty_store(store);
  RepoConfigHeader h;
  h.repo_id = Id::random();
  h.created = static_cast<uint64_t>(std::time(nullptr));
  RepoKeys keys = RepoKeys::generate();
  KeySlot slot = make_key_slot(h.repo_id, keys.master(), passphrase, options.kdf);
  store.write("keys/" + slot.name(), encode_key_slot(slot), WriteMode::create);
  store.write("config", encode_config(h, options.settings, keys), WriteMode::create);
}

void Repository::init_same_key(Store& store, const Repository& source, std::span<const uint8_t> passphrase,
                               const KdfParams& kdf) {
  require_empty_store(store);
  const std::vector<uint8_t> config = source.store().read("config");
  if (decode_config_header(config, source.location() + "/config").repo_id != source.id())
    fail(ErrorCategory::busy, "{}: config changed while it was read", source.location());
  KeySlot slot = make_key_slot(source.id(), source.keys().master(), passphrase, kdf);
  store.write("keys/" + slot.name(), encode_key_slot(slot), WriteMode::create);
  store.write("config", config, WriteMode::create);
}

void Repository::init(const std::string& url, std::span<const uint8_t> passphrase, const InitOptions& options) {
  validate_settings(options.settings, ErrorCategory::usage);
  std::unique_ptr<Store> store = create_store(url);
  init(*store, passphrase, options);
}

RepoConfigHeader Repository::read_header(Store& store) {
  std::optional<ObjectInfo> config = store.stat("config");
  if (!config) {
    store.list("keys/");  // a store that does not exist says so (not_found)
    fail(ErrorCategory::format, "{} is not an arche repository (no config file)", store.location());
  }
  if (config->size > kMaxConfigSize)
    fail(ErrorCategory::corrupt, "{}/config: {} bytes is more than a config holds", store.location(), config->size);
  return decode_config_header(store.read("config"), store.location() + "/config");
}

std::unique_ptr<Repository> Repository::open(const std::string& url, std::span<const uint8_t> passphrase) {
  return open(std::shared_ptr<Store>(open_store(url)), passphrase);
}

std::unique_ptr<Repository> Repository::open(std::shared_ptr<Store> store, std::span<const uint8_t> passphrase) {
  crypto_init();
  std::unique_ptr<Repository> repo(new Repository());
  repo->store_ = std::move(store);
  repo->location_ = repo->store_->location();
  const StoreCapabilities caps = repo->store_->capabilities();
  if (!caps.consistent_listing) repo->listing_delay_ns_ = int64_t{caps.listing_delay_ms} * 1000000;
  repo->note_write();  // what was written before this open is listed
  const std::string& where = repo->location_;
  repo->header_ = read_header(*repo->store_);
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
      fail(ErrorCategory::crypto, "{}: no usable key slot in keys/{}", where, damaged ? " (the key files are damaged)" : "");
    if (tried == 1) fail(ErrorCategory::crypto, "wrong passphrase: the key slot of {} does not open with it", where);
    fail(ErrorCategory::crypto, "wrong passphrase: none of the {} key slots of {} opens with it", tried, where);
  }
  repo->settings_ = decode_config_settings(repo->store_->read("config"), *repo->keys_, where + "/config");
  return repo;
}

// ---- objects ---------------------------------------------------------------------

namespace {
int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Repository::note_write() const {
  if (!listing_delay_ns_) return;
  const int64_t until = steady_now_ns() + listing_delay_ns_;
  int64_t seen = listed_after_ns_.load();
  while (seen < until && !listed_after_ns_.compare_exchange_weak(seen, until)) {
  }
}

void Repository::settle_listing() const {
  if (!listing_delay_ns_) return;
  const int64_t wait = listed_after_ns_.load() - steady_now_ns();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
}

std::vector<std::string> Repository::list_files(std::string_view dir) const {
  const std::string prefix = std::string(dir) + "/";
  std::vector<std::string> names;
  settle_listing();
  for (ObjectInfo& o : store_->list(prefix)) {
    std::string name = o.name.substr(prefix.size());
    if (name.find('/') == std::string::npos) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> Repository::read_file(std::string_view dir, const std::string& name) const {
  const std::string object = std::string(dir) + "/" + name;
  std::unique_ptr<ObjectReader> reader = store_->open(object);
  if (reader->size() > kMaxIndexPayload)
    fail(ErrorCategory::corrupt, "{}: {} bytes is more than such an object can hold", object, reader->size());
  std::vector<uint8_t> data(reader->size());
  reader->read(0, data);
  return data;
}

std::string Repository::write_content_file(std::string_view dir, std::span<const uint8_t> bytes) const {
  const std::string name = content_hash(bytes).hex();
  const std::string object = std::string(dir) + "/" + name;
  if (store_->stat(object)) return name;  // the same bytes are there already
  try {
    store_->write(object, bytes, WriteMode::create);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::exists) throw;  // written meanwhile, with the same bytes
  }
  note_write();
  return name;
}

void Repository::write_named_file(std::string_view dir, const std::string& name, std::span<const uint8_t> bytes,
                                  bool overwrite) const {
  store_->write(std::string(dir) + "/" + name, bytes, overwrite ? WriteMode::replace : WriteMode::create);
  note_write();
}

void Repository::remove_file(std::string_view dir, const std::string& name) const {
  store_->remove(std::string(dir) + "/" + name);
  note_write();
}

std::vector<PackObject> Repository::list_packs() const {
  std::vector<PackObject> packs;
  settle_listing();
  for (const ObjectInfo& o : store_->list("data/")) {
    // data/ab/ab12...: two hex digits, then the 64 of the id, which start with them.
    if (o.name.size() != 5 + 3 + 2 * kIdSize || o.name[7] != '/') continue;
    const std::string hex = o.name.substr(8);
    if (!is_hex_name(hex, 2 * kIdSize) || o.name.compare(5, 2, hex, 0, 2) != 0) continue;
    packs.push_back({Id::from_hex(hex), o.size});
  }
  return packs;
}

std::unique_ptr<ObjectReader> Repository::open_pack_object(const Id& pack_id) const {
  return store_->open(pack_relative_path(pack_id));
}

void Repository::remove_pack(const Id& pack_id) const {
  store_->remove(pack_relative_path(pack_id));
  note_write();
}

size_t Repository::remove_dead_temp_files() const { return store_->remove_dead_temporaries().size(); }

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

std::vector<uint8_t> Repository::seal_index_file(const std::vector<PackInfo>& packs) const {
  return seal_object(*keys_, kIndexMagic, kIndexVersion, encode_index_payload(packs), false);
}

std::string Repository::write_index_file(const std::vector<PackInfo>& packs) const {
  return write_content_file("index", seal_index_file(packs));
}

void Repository::reset_index() {
  std::lock_guard lock(packs_mutex_);
  open_packs_.clear();
  index_.clear();
  index_files_.clear();
  unindexed_.clear();
  unreadable_index_.clear();
  unindexed_count_ = 0;
  loaded_index_.clear();
  marked_.clear();
}

void Repository::load_index(bool adopt_unindexed) {
  reset_index();
  // Index files a prune replaces while we read them: start again (a few times).
  for (int attempt = 0;; ++attempt) {
    try {
      load_index_once(adopt_unindexed);
      return;
    } catch (const IndexReplaced&) {
      if (attempt == 4) fail(ErrorCategory::busy, "{}: the index keeps changing while it is read; try again", location_);
      reset_index();
    }
  }
}

void Repository::load_index_once(bool adopt_unindexed) {
  // Marks first: a pack a prune marked is not adopted (docs/storage.md "Prune").
  for (const DeletionMark& m : load_deletion_marks(*this)) marked_.insert(m.packs.begin(), m.packs.end());
  settle_listing();
  std::vector<ObjectInfo> index_objects = store_->list("index/");
  std::vector<PackObject> present = list_packs();
  std::unordered_set<Id, IdHash> on_disk;
  for (const PackObject& p : present) on_disk.insert(p.id);
  // Reserve from object sizes (45 bytes per entry) so the vector never doubles.
  size_t upper = 0;
  for (const ObjectInfo& o : index_objects) {
    std::string name = o.name.substr(6);
    if (name.find('/') != std::string::npos) continue;
    upper += static_cast<size_t>(o.size / kPackEntrySize);
    index_files_.push_back(std::move(name));
  }
  std::sort(index_files_.begin(), index_files_.end());
  index_.reserve(upper);
  std::unordered_set<Id, IdHash> indexed;
  size_t missing = 0;
  for (const std::string& name : index_files_) {
    std::vector<PackInfo> listed;
    try {
      listed = read_index_file(name);
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::not_found) throw IndexReplaced{};
      // One damaged index file must not stop everything: its packs count as
      // unindexed (a backup adopts them), and the error says how to mend it.
      // A backup says so; a restore says it only if a chunk is then missing.
      if (adopt_unindexed) warn("{} (run: arche backup repair index)", e.what());
      unreadable_index_.push_back(name);
      continue;
    }
    std::vector<Id>& packs_of_file = loaded_index_.emplace_back(name, std::vector<Id>{}).second;
    for (const PackInfo& p : listed) {
      packs_of_file.push_back(p.id);
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
  for (const PackObject& p : present) unindexed_count_ += !indexed.count(p.id);
  if (adopt_unindexed) {
    for (const PackObject& p : present) {
      if (indexed.count(p.id) || marked_.count(p.id)) continue;
      interrupt::check();
      try {
        std::unique_ptr<ObjectReader> reader = open_pack_object(p.id);
        PackInfo info = read_pack_index(*reader, p.id, header_.repo_id, *keys_);
        index_.add_pack(info);
        unindexed_.push_back(std::move(info));
      } catch (const Error& e) {
        if (e.category() == ErrorCategory::interrupted) throw;
        if (e.category() == ErrorCategory::not_found) continue;  // deleted meanwhile by a prune
        warn("unindexed pack {} is unreadable and stays unused: {}", p.id.short_hex(), e.what());
      }
    }
    if (!unindexed_.empty())
      note("{} pack{} of an interrupted backup will be reused", unindexed_.size(), unindexed_.size() == 1 ? "" : "s");
  }
  index_.finalize();
}

std::vector<PackInfo> Repository::packs_to_index_again(const std::vector<PackInfo>& written,
                                                       const std::string& own_index, bool prune_running) {
  const std::vector<std::string> now = list_files("index");
  const std::unordered_set<std::string> current(now.begin(), now.end());
  bool gone = !own_index.empty() && !current.count(own_index);
  for (const auto& [name, packs] : loaded_index_) gone |= !current.count(name);
  if (!gone && !prune_running) return {};
  // A prune that started before the manifest appeared may drop what it did not see
  // used: list all of it again, in an index file written after the manifest (which
  // any later prune reads together with the manifest).
  std::vector<PackInfo> out = written;
  std::unordered_set<Id, IdHash> have;
  for (const PackInfo& p : written) have.insert(p.id);
  for (const Id& id : index_.referenced_packs()) {
    if (!have.insert(id).second) continue;
    interrupt::check();
    try {
      out.push_back(read_pack_index(*open_pack_object(id), id, header_.repo_id, *keys_));
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::not_found) throw;
      fail(ErrorCategory::busy,
           "pack {}, which this backup refers to, was deleted while it ran (by a prune that took it for dead?)",
           id.short_hex());
    }
  }
  return out;
}

// ---- blobs -----------------------------------------------------------------------

std::shared_ptr<ObjectReader> Repository::open_pack(uint32_t pack_number) {
  std::lock_guard lock(packs_mutex_);
  auto it = open_packs_.find(pack_number);
  if (it != open_packs_.end()) return it->second;
  if (open_packs_.size() >= kMaxOpenPacks) open_packs_.clear();
  std::shared_ptr<ObjectReader> reader = open_pack_object(index_.pack_id(pack_number));
  open_packs_.emplace(pack_number, reader);
  return reader;
}

std::span<const uint8_t> Repository::read_blob(const Id& id, std::vector<uint8_t>& frame,
                                               std::vector<uint8_t>& scratch, const std::string& what) {
  std::optional<ChunkIndex::Location> where = index_.find(id);
  if (!where) fail_missing_chunk(id, what);
  const std::string where_text =
      fmt::format("{}: chunk {} in pack {}", what, id.short_hex(), index_.pack_id(where->pack).short_hex());
  frame.resize(where->length);
  try {
    open_pack(where->pack)->read(where->offset, frame);
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
    fail(ErrorCategory::not_found, "no key slot {} in {}", name, location_);
  if (names.size() == 1) fail(ErrorCategory::usage, "refusing to remove the last key slot: the repository would be lost");
  remove_file("keys", name);
}

}  // namespace arche::backup
