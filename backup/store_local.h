// LocalStore: a repository in a directory of this machine (or a mounted NAS), laid
// out as it always was (docs/backup.md "Layout"): an object "data/ab/abcd…" is the
// file DIR/data/ab/abcd…, with permissions 0600 (directories 0700) whatever the
// umask, because a repository holds nothing others may read.
//
// Guarantees (docs/storage.md):
// - write() and ObjectWriter::commit(): the bytes go to ".NAME.arche-tmp-PID-XXXX"
//   in the same directory, are fsynced, and the file is renamed into place
//   (WriteMode::replace) or hard-linked there (WriteMode::create: link(2) fails
//   with EEXIST if the name exists, atomically, on every POSIX file system), and the
//   directory is fsynced: a reader sees no object or all of it, also after a crash.
// - Listings are consistent: an object whose write returned is listed.
// - Temporary files are never listed; those whose process is gone are found by
//   list_temporaries() and removed by remove_dead_temporaries().
// - ObjectReader keeps one descriptor and reads with pread: many threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "backup/store.h"

namespace arche::backup {

class LocalStore final : public Store {
 public:
  // An existing directory (a missing one is a not_found error at the first access).
  explicit LocalStore(std::string root);
  // Makes a directory for a new repository with the layout's subdirectories (data/00
  // … data/ff, index, snapshots, locks, keys); it must not exist or be empty.
  static std::unique_ptr<LocalStore> create(const std::string& root);

  std::string location() const override { return root_; }
  StoreCapabilities capabilities() const override;
  std::vector<ObjectInfo> list(std::string_view prefix) override;
  std::optional<ObjectInfo> stat(std::string_view name) override;
  std::vector<uint8_t> read(std::string_view name) override;
  std::vector<uint8_t> read_range(std::string_view name, uint64_t offset, uint64_t length) override;
  std::unique_ptr<ObjectReader> open(std::string_view name) override;
  void write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) override;
  std::unique_ptr<ObjectWriter> create(std::string_view name, WriteMode mode) override;
  void remove(std::string_view name) override;
  std::vector<ObjectInfo> list_temporaries() override;
  std::vector<ObjectInfo> remove_dead_temporaries() override;
  std::string local_path() const override { return root_; }

  // The file an object is (for tests and messages).
  std::string path_of(std::string_view name) const;
  // Gives a temporary file its name: link (create) or rename (replace), fsync dir.
  void publish(const std::string& temp, const std::string& path, WriteMode mode);
  // A new temporary file beside `path` (its parent directory made if missing).
  std::string temp_path_for(const std::string& path);

 private:
  std::string root_;
  std::atomic<uint64_t> temp_counter_{0};
};

}  // namespace arche::backup
