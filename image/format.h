// Image formats: probing, opening, creating, checking and measuring, each format
// behind one FormatDriver. Callers use the free functions; drivers register in
// format.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/file.h"
#include "image/block_device.h"
#include "image/image_lock.h"  // lock_image_file(), which every driver calls on open

namespace arche::image {

struct OpenOptions {
  bool writable = false;
  std::string format;         // empty: probe the file
  bool open_backing = true;   // false: ranges the top layer does not hold read as zeros
  uint64_t cache_bytes = 0;   // metadata cache per image; 0 = driver default
  // Skip the fsync barriers that order metadata writes against power loss (qemu's
  // cache=unsafe). Only for files that are not live yet, such as a conversion
  // target under a temporary name. A process crash is still safe.
  bool no_barriers = false;
  // Read-only opens normally refuse a file another process is writing (the result
  // could be inconsistent) and keep writers out while open; force_share reads it
  // anyway and lets others write (image/image_lock.h).
  bool force_share = false;
  // Open the backing chain with force_share, the top layer locked as usual. For the
  // one process that writes into its own backing file (commit): its read-only view
  // of the base must not lock out its own writer.
  bool share_backing = false;
  // Opened only to be described (image info): formats whose data arche cannot read
  // (encrypted qcow2) open too, and every read or write of them then fails.
  bool info_only = false;
};

struct CreateOptions {
  std::string format = "qcow2";
  uint64_t size = 0;           // 0 with a backing file: the backing file's size
  std::string backing_file;    // as it will be recorded (relative to the new image)
  std::string backing_format;  // empty: probed, and then recorded
  // Driver options from "-o key=value,...". Drivers reject keys they do not know.
  std::map<std::string, std::string> options;
  bool overwrite = false;  // replace an existing file (otherwise: exists error)
  // The name the image will have. create() is handed a temporary name to build
  // under; a format that records its own file name (a VMDK extent) records this one.
  std::string final_path;
};

// One creation option of a format ("-o key=value"), as `-o help` lists it.
struct CreateOptionInfo {
  std::string name;           // "cluster_size"
  std::string values;         // what it takes: "512 to 2M, a power of two", "on|off"
  std::string default_value;  // what an image gets without the option
  std::string description;
};

struct Measurement {
  uint64_t required = 0;         // bytes a conversion of the source needs
  uint64_t fully_allocated = 0;  // bytes if every block were allocated
};

enum class RepairMode { none, leaks, all };

struct CheckResult {
  bool supported = true;  // false: the format has no metadata to check (raw)
  uint64_t corruptions = 0;
  uint64_t leaks = 0;
  uint64_t check_errors = 0;  // the check itself could not read something
  uint64_t corruptions_fixed = 0;
  uint64_t leaks_fixed = 0;
  uint64_t total_clusters = 0;
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;
  uint64_t image_end_offset = 0;
  std::vector<std::string> messages;  // one line per problem found or fixed
};

// Keeps track of the files of a backing chain while it is being opened, so a file
// that backs itself (directly or through others) is an error, not endless recursion.
struct ChainState {
  std::vector<std::pair<uint64_t, uint64_t>> ids;  // (st_dev, st_ino) of opened layers
  int depth = 0;
};

class FormatDriver {
 public:
  virtual ~FormatDriver() = default;
  virtual std::string name() const = 0;
  // How sure the driver is that `head` (the first bytes of the file) is its format:
  // 0 = not at all, 100 = magic matched.
  virtual int probe(std::span<const uint8_t> head) const = 0;
  virtual std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options,
                                            ChainState& chain) const = 0;
  virtual void create(const std::string& path, const CreateOptions& options) const = 0;
  // Every key create() accepts in CreateOptions::options.
  virtual std::vector<CreateOptionInfo> create_options() const = 0;
  // Space a conversion of `source` (may be null: size only) into this format needs.
  virtual Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const = 0;
  virtual CheckResult check(const std::string& path, RepairMode repair) const;
};

// "qcow2", "raw", ... (aliases such as "vhd" for "vpc" resolve). Throws usage error.
const FormatDriver& driver_for(const std::string& format);
std::vector<std::string> format_names();

// Format of the file at path, by content. Files no driver claims are "raw".
std::string probe_format(const std::string& path);

std::unique_ptr<BlockDevice> open_image(const std::string& path, const OpenOptions& options = {});
// Opens a backing file for a layer that is itself being opened (chain-aware).
std::unique_ptr<BlockDevice> open_backing(const std::string& path, const std::string& format,
                                          const OpenOptions& options, ChainState& chain);

void create_image(const std::string& path, const CreateOptions& options);

// The backing path as the host must open it: relative paths are relative to the
// directory of the image that records them (like qemu).
std::string resolve_backing_path(const std::string& image_path, const std::string& backing);

// Parses "a=1,b=x" into a map (later keys win). Throws usage error on bad syntax.
std::map<std::string, std::string> parse_option_list(const std::string& text);

}  // namespace arche::image
