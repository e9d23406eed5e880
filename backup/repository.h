// A backup repository: a set of immutable objects in a Store (store.h: a local
// directory, an SFTP server, an S3 bucket) laid out as docs/backup.md says:
//
//   config           plain facts (repository id, format version) + sealed settings
//   keys/<slot>      the master secret wrapped by a passphrase (key_slot.h)
//   data/<xx>/<id>   packs of encrypted chunks (pack.h)
//   index/<hash>     which pack holds which chunk (index.h)
//   snapshots/<hash> snapshot manifests (snapshot.h)
//   locks/<id>       who is using the repository (lock.h)
//   deletions/<id>   packs a prune marked for deletion (deletions.h)
//
// Every object is written whole and atomically and never modified in place; only
// locks and deletion marks are replaced. Index and snapshot objects are named by the
// BLAKE2b-256 of their (encrypted) bytes, packs and locks by random ids. Nothing in
// backup/ touches paths of the repository: everything goes through the Store.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backup/crypto.h"
#include "backup/frame.h"
#include "backup/index.h"
#include "backup/key_slot.h"
#include "backup/store.h"
#include "core/error.h"

namespace arche::backup {

// Settings fixed when the repository is made (sealed in config).
struct RepoSettings {
  uint32_t image_chunk_size = 1u << 20;  // fixed-size chunks of disk images (see docs/backup.md)
  uint32_t cdc_min = 256u << 10;         // FastCDC for files: minimum,
  uint32_t cdc_avg = 1u << 20;           // normal (target average) and
  uint32_t cdc_max = 4u << 20;           // maximum chunk size
  int32_t compression_level = 1;         // zstd level for new chunks (create can override; docs/backup.md)
  uint32_t pack_size = 16u << 20;        // packs are closed when they reach this size
};
// Throws a usage error (or corrupt, for a config read from disk) when out of range.
void validate_settings(const RepoSettings& s, ErrorCategory category);

struct InitOptions {
  RepoSettings settings;
  KdfParams kdf;
};

// The plain part of config: readable without the key.
struct RepoConfigHeader {
  uint16_t major = 1, minor = 0;
  Id repo_id;
  uint64_t created = 0;
};

std::vector<uint8_t> encode_config(const RepoConfigHeader& header, const RepoSettings& settings, const RepoKeys& keys);
RepoConfigHeader decode_config_header(std::span<const uint8_t> data, const std::string& what);
RepoSettings decode_config_settings(std::span<const uint8_t> data, const RepoKeys& keys, const std::string& what);

// A pack object: its id (the file name) and size.
struct PackObject {
  Id id;
  uint64_t size = 0;
};

class Repository {
 public:
  // Creates a repository in an empty store: the key slot first, config last (a store
  // with a config is a repository; one with only a key slot is an interrupted init,
  // which init may redo).
  static void init(Store& store, std::span<const uint8_t> passphrase, const InitOptions& options);
  // A replica of `source` in an empty store: the same repository id, master secret and
  // settings (its config, byte for byte) under a key slot of `passphrase`, so packs
  // copied between them stay valid as they are (copy.h; docs/storage.md).
  static void init_same_key(Store& store, const Repository& source, std::span<const uint8_t> passphrase,
                            const KdfParams& kdf);
  // The store a URL names, created (create_store), then init.
  static void init(const std::string& url, std::span<const uint8_t> passphrase, const InitOptions& options);
  // Opens with a passphrase; a wrong one is one crypto error.
  static std::unique_ptr<Repository> open(std::shared_ptr<Store> store, std::span<const uint8_t> passphrase);
  static std::unique_ptr<Repository> open(const std::string& url, std::span<const uint8_t> passphrase);
  // Reads config's plain part only (no key needed): "not a repository" before a
  // passphrase is asked for.
  static RepoConfigHeader read_header(Store& store);

  Store& store() const { return *store_; }
  // Where it is, for messages (the store's location).
  const std::string& location() const { return location_; }
  const Id& id() const { return header_.repo_id; }
  const RepoConfigHeader& header() const { return header_; }
  const RepoKeys& keys() const { return *keys_; }
  const RepoSettings& settings() const { return settings_; }
  // The name of the key slot the passphrase opened.
  const std::string& opened_slot() const { return opened_slot_; }

  // --- objects ----------------------------------------------------------------
  // Names in index/, snapshots/, locks/, keys/ or deletions/, sorted.
  std::vector<std::string> list_files(std::string_view dir) const;
  // An object of one of those; one larger than such objects can be is corrupt.
  std::vector<uint8_t> read_file(std::string_view dir, const std::string& name) const;
  // Stores bytes under their content hash (durably); returns the name.
  std::string write_content_file(std::string_view dir, std::span<const uint8_t> bytes) const;
  // Stores bytes under `name`; with overwrite an existing object is replaced atomically.
  void write_named_file(std::string_view dir, const std::string& name, std::span<const uint8_t> bytes,
                        bool overwrite) const;
  void remove_file(std::string_view dir, const std::string& name) const;
  // On a store whose listings lag (StoreCapabilities::listing_delay_ms), listings by
  // this object wait until what it wrote or removed, and whatever was written before
  // it was opened, shows in them: a restore right after a backup finds its snapshot.
  // Writers that go to the store directly (packs) call note_write().
  void note_write() const;

  // Packs present in data/.
  std::vector<PackObject> list_packs() const;
  std::unique_ptr<ObjectReader> open_pack_object(const Id& pack_id) const;
  void remove_pack(const Id& pack_id) const;
  // Temporary objects left by processes that died (a SIGKILLed backup): removes
  // those the store can tell are dead. Returns how many were removed.
  size_t remove_dead_temp_files() const;

  // --- index ------------------------------------------------------------------
  // Reads every index file into index(). With adopt_unindexed, packs that exist but
  // are in no index file (left by an interrupted backup) are read from their footers
  // and added too, and remembered in unindexed_packs() so the next index file lists them.
  void load_index(bool adopt_unindexed);
  ChunkIndex& index() { return index_; }
  // Empties the index (and the pack descriptors cached by pack number).
  void reset_index();
  const ChunkIndex& index() const { return index_; }
  const std::vector<std::string>& index_files() const { return index_files_; }
  const std::vector<PackInfo>& unindexed_packs() const { return unindexed_; }
  // Packs a prune marked for deletion (deletions.h), as load_index found them: a
  // backup does not adopt them.
  const std::unordered_set<Id, IdHash>& marked_packs() const { return marked_; }
  // After a backup has written its manifest: the packs its snapshot needs (those it
  // wrote or adopted, `written`, and those of the loaded index it relied on:
  // ChunkIndex::reference) when a prune beside it may have taken them out of the
  // index, for one more index file; empty when every index file it loaded or wrote
  // (`own_index`) is still there and no prune runs. (The prune deletes a marked pack
  // only after this backup has ended, and not when an index lists it again.) A pack
  // that is gone already is a busy error.
  std::vector<PackInfo> packs_to_index_again(const std::vector<PackInfo>& written, const std::string& own_index,
                                             bool prune_running);
  // Index files load_index could not read (their packs then count as unindexed).
  const std::vector<std::string>& unreadable_index_files() const { return unreadable_index_; }
  // The error for a chunk the index does not know: it names `repair index` when
  // packs exist that no readable index file lists, else a lost pack.
  [[noreturn]] void fail_missing_chunk(const Id& id, const std::string& what) const;
  // Every pack of every index file (for check, prune, info).
  std::vector<PackInfo> read_all_index_files(std::vector<std::string>* names = nullptr) const;
  std::vector<PackInfo> read_index_file(const std::string& name) const;
  std::string write_index_file(const std::vector<PackInfo>& packs) const;
  // The bytes write_index_file stores (its name is their content_hash): a copy of
  // the repository elsewhere (tape) carries an index of just the packs it holds.
  std::vector<uint8_t> seal_index_file(const std::vector<PackInfo>& packs) const;

  // --- blobs ------------------------------------------------------------------
  // Reads, authenticates and decompresses a blob. The result views `frame` or
  // `scratch`; both are reused by the caller between calls.
  std::span<const uint8_t> read_blob(const Id& id, std::vector<uint8_t>& frame, std::vector<uint8_t>& scratch,
                                     const std::string& what);
  std::vector<uint8_t> read_blob(const Id& id, const std::string& what);
  // The pack, opened once and kept (a handful of readers at most).
  std::shared_ptr<ObjectReader> open_pack(uint32_t pack_number);

  // --- key slots --------------------------------------------------------------
  std::vector<std::pair<std::string, KeySlot>> key_slots() const;
  std::string add_key_slot(std::span<const uint8_t> passphrase, const KdfParams& kdf) const;
  void remove_key_slot(const std::string& name) const;

 private:
  Repository() = default;
  struct IndexReplaced {};  // an index file went away while being read
  void load_index_once(bool adopt_unindexed);
  void settle_listing() const;

  std::shared_ptr<Store> store_;
  std::string location_;
  int64_t listing_delay_ns_ = 0;                   // 0: listings are consistent
  mutable std::atomic<int64_t> listed_after_ns_{0};  // steady clock: listings wait until then
  RepoConfigHeader header_;
  std::unique_ptr<RepoKeys> keys_;
  RepoSettings settings_;
  std::string opened_slot_;
  ChunkIndex index_;
  std::vector<std::string> index_files_;
  std::vector<PackInfo> unindexed_;
  std::vector<std::string> unreadable_index_;
  std::vector<std::pair<std::string, std::vector<Id>>> loaded_index_;  // index file -> its packs
  std::unordered_set<Id, IdHash> marked_;
  size_t unindexed_count_ = 0;  // packs present that no readable index file lists
  std::mutex packs_mutex_;
  std::unordered_map<uint32_t, std::shared_ptr<ObjectReader>> open_packs_;
};

}  // namespace arche::backup
