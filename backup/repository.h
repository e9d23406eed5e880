// A backup repository: a directory of immutable files (docs/backup.md).
//
//   config           plain facts (repository id, format version) + sealed settings
//   keys/<slot>      the master secret wrapped by a passphrase (key_slot.h)
//   data/<xx>/<id>   packs of encrypted chunks (pack.h)
//   index/<hash>     which pack holds which chunk (index.h)
//   snapshots/<hash> snapshot manifests (snapshot.h)
//   locks/<id>       who is using the repository (lock.h)
//
// Files are written under a temporary name, fsynced and renamed; nothing is ever
// modified in place. Index and snapshot files are named by the BLAKE2b-256 of their
// (encrypted) bytes, packs and locks by random ids.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backup/crypto.h"
#include "backup/frame.h"
#include "backup/index.h"
#include "backup/key_slot.h"
#include "core/error.h"
#include "core/file.h"

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

class Repository {
 public:
  // Creates a repository in `path` (which must not exist, or be an empty directory).
  static void init(const std::string& path, std::span<const uint8_t> passphrase, const InitOptions& options);
  // Opens with a passphrase; a wrong one is one crypto error.
  static std::unique_ptr<Repository> open(const std::string& path, std::span<const uint8_t> passphrase);
  // Reads config's plain part only (no key needed).
  static RepoConfigHeader read_header(const std::string& path);

  const std::string& root() const { return root_; }
  const Id& id() const { return header_.repo_id; }
  const RepoConfigHeader& header() const { return header_; }
  const RepoKeys& keys() const { return *keys_; }
  const RepoSettings& settings() const { return settings_; }
  // The name of the key slot the passphrase opened.
  const std::string& opened_slot() const { return opened_slot_; }

  // --- files ------------------------------------------------------------------
  std::string path_of(std::string_view dir, const std::string& name) const;
  // Names in index/, snapshots/, locks/ or keys/ (temporary files excluded).
  std::vector<std::string> list_files(std::string_view dir) const;
  std::vector<uint8_t> read_file(std::string_view dir, const std::string& name) const;
  // Stores bytes under their content hash (durably); returns the name.
  std::string write_content_file(std::string_view dir, std::span<const uint8_t> bytes) const;
  // Stores bytes under `name`, replacing an existing file atomically (durably).
  void write_named_file(std::string_view dir, const std::string& name, std::span<const uint8_t> bytes,
                        bool overwrite) const;
  void remove_file(std::string_view dir, const std::string& name) const;

  // Packs present in data/ (by their file names).
  std::vector<Id> list_packs() const;
  std::string pack_path(const Id& pack_id) const;
  // Temporary files left by processes that died (a SIGKILLed backup): removes those
  // whose process is gone on this host. Returns how many were removed.
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
  // Index files load_index could not read (their packs then count as unindexed).
  const std::vector<std::string>& unreadable_index_files() const { return unreadable_index_; }
  // The error for a chunk the index does not know: it names `repair index` when
  // packs exist that no readable index file lists, else a lost pack.
  [[noreturn]] void fail_missing_chunk(const Id& id, const std::string& what) const;
  // Every pack of every index file (for check, prune, info).
  std::vector<PackInfo> read_all_index_files(std::vector<std::string>* names = nullptr) const;
  std::vector<PackInfo> read_index_file(const std::string& name) const;
  std::string write_index_file(const std::vector<PackInfo>& packs) const;

  // --- blobs ------------------------------------------------------------------
  // Reads, authenticates and decompresses a blob. The result views `frame` or
  // `scratch`; both are reused by the caller between calls.
  std::span<const uint8_t> read_blob(const Id& id, std::vector<uint8_t>& frame, std::vector<uint8_t>& scratch,
                                     const std::string& what);
  std::vector<uint8_t> read_blob(const Id& id, const std::string& what);
  // The pack file, opened once and kept (a handful of descriptors at most).
  std::shared_ptr<File> open_pack(uint32_t pack_number);

  // --- key slots --------------------------------------------------------------
  std::vector<std::pair<std::string, KeySlot>> key_slots() const;
  std::string add_key_slot(std::span<const uint8_t> passphrase, const KdfParams& kdf) const;
  void remove_key_slot(const std::string& name) const;

 private:
  Repository() = default;

  std::string root_;
  RepoConfigHeader header_;
  std::unique_ptr<RepoKeys> keys_;
  RepoSettings settings_;
  std::string opened_slot_;
  ChunkIndex index_;
  std::vector<std::string> index_files_;
  std::vector<PackInfo> unindexed_;
  std::vector<std::string> unreadable_index_;
  size_t unindexed_count_ = 0;  // packs present that no readable index file lists
  std::mutex packs_mutex_;
  std::unordered_map<uint32_t, std::shared_ptr<File>> open_packs_;
};

}  // namespace arche::backup
