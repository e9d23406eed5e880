// The one seam between a backup repository and where its files live (LevelDB's
// env.h in spirit). The repository (repository.h, pack.h, lock.h, check, prune, ...)
// names objects by their path inside the repository ("config", "keys/<slot>",
// "data/ab/abcd…", "index/<hash>", "snapshots/<hash>", "locks/<id>") and never
// touches paths, sockets or HTTP itself: a local directory, an SFTP server and an
// S3 bucket hold the same layout, so a repository copied from one to another opens
// there (docs/storage.md).
//
// Contract shared by every store:
// - Names are relative, '/'-separated, never start with '/' and never contain "..".
// - write() and ObjectWriter::commit() are atomic: a reader sees no object or the
//   whole object, never a part. After they return the object is durable (fsync /
//   the server's acknowledgement).
// - A missing object is a not_found error; a dropped connection or a failing server
//   is an io error naming the store and the object; a full store is no_space.
// - Objects are written once and never modified in place; the only replacements
//   the repository makes are of key slots and locks (WriteMode::replace).
// - Every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace arche::backup {

struct ObjectInfo {
  std::string name;  // relative to the repository root
  uint64_t size = 0;
  int64_t mtime = 0;  // unix seconds, as the store reports it (0 if unknown)
};

// What a store can and cannot do; locking and prune adapt to it (docs/storage.md).
struct StoreCapabilities {
  bool atomic_rename = false;       // a rename that replaces atomically exists (local, SFTP)
  bool exclusive_create = false;    // create-if-absent is atomic (O_EXCL, SFTP open CREAT|EXCL)
  bool consistent_listing = false;  // a listing after a write always shows it
  bool local = false;               // a directory of this machine (temp files of dead pids can be found)
  unsigned parallelism = 1;         // requests worth having in flight at once
  // Without consistent_listing: the longest a finished write takes to appear in a
  // listing. Locks wait this long between writing their object and listing the
  // others (docs/storage.md "Locks").
  unsigned listing_delay_ms = 0;
};

enum class WriteMode {
  create,   // the object must not exist yet (an existing one is an `exists` error)
  replace,  // an existing object is replaced atomically
};

// A random-access reader of one object (packs are read by byte ranges).
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly out.size() bytes at offset; reading past the end is a format
  // error ("truncated").
  virtual void read(uint64_t offset, std::span<uint8_t> out) = 0;
};

// An object written front to back (packs of 16 MiB, restored images), then made
// visible whole by commit(). Destroyed without commit(), nothing is left visible
// (temporary files and incomplete multipart uploads are removed, best effort).
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual void append(std::span<const uint8_t> data) = 0;
  virtual uint64_t bytes_written() const = 0;
  virtual void commit() = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Where it is, for messages ("/srv/repo", "sftp://backup@nas/repo",
  // "s3://host/bucket/prefix"); never contains a secret.
  virtual std::string location() const = 0;
  virtual StoreCapabilities capabilities() const = 0;

  // Every object whose name starts with `prefix` ("data/", "snapshots/"), recursively,
  // in no particular order. Temporary objects of writers in progress are not listed.
  virtual std::vector<ObjectInfo> list(std::string_view prefix) = 0;
  virtual std::optional<ObjectInfo> stat(std::string_view name) = 0;

  virtual std::vector<uint8_t> read(std::string_view name) = 0;
  virtual std::vector<uint8_t> read_range(std::string_view name, uint64_t offset, uint64_t length) = 0;
  virtual std::unique_ptr<ObjectReader> open(std::string_view name) = 0;

  virtual void write(std::string_view name, std::span<const uint8_t> data, WriteMode mode) = 0;
  virtual std::unique_ptr<ObjectWriter> create(std::string_view name, WriteMode mode) = 0;
  // Removing a missing object is not an error (another process may have won the race).
  virtual void remove(std::string_view name) = 0;

  // Leftovers of writers that died before commit(): temporary files of killed
  // processes, incomplete uploads. `check` names them. Default: none can be seen.
  virtual std::vector<ObjectInfo> list_temporaries() { return {}; }
  // Removes those whose writer is certainly gone (a process of this machine that no
  // longer exists) and returns them. Callers make sure no other machine is writing.
  virtual std::vector<ObjectInfo> remove_dead_temporaries() { return {}; }
  // The directory of a local store ("" for others): a file backup never backs the
  // repository up into itself.
  virtual std::string local_path() const { return {}; }
};

// Opens the store a repository URL names:
//   /path or path            a local directory (LocalStore)
//   sftp://user@host[:port]/path
//   s3://[ACCESS@]host[:port]/bucket[/prefix]   (https; s3+http:// for a local endpoint)
// Credentials never come from the URL's password part (docs/storage.md).
std::unique_ptr<Store> open_store(const std::string& url);
// Every store refuses, with a usage error naming `location`, an object name outside
// the contract: relative, '/'-separated, at most 1024 bytes, no empty, "." or ".."
// component, no control characters. (The repository's own names never start with a
// '.': stores may keep their temporaries and probes under such names.)
void check_object_name(std::string_view name, const std::string& location);

// The same for a repository about to be made: a local directory is created (it must
// not exist or be empty) with the layout's subdirectories.
std::unique_ptr<Store> create_store(const std::string& url);

}  // namespace arche::backup
