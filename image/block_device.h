// The block layer's one interface. Everything that holds a virtual disk — a raw
// file, a qcow2 overlay with its backing chain, later VMDK/VHDX/VDI, a RAID-1
// mirror, a lazy view of a backup — is a BlockDevice, and everything that uses a
// disk (the VMM's virtio-blk, backup, convert, P2V) talks only to this.
//
// Thread safety: every method may be called from several threads at once. Reads
// and writes of disjoint ranges proceed in parallel where the driver allows.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/json.h"

namespace arche {
class File;
}

namespace arche::image {

// What one layer of a chain says about a range of the virtual disk.
enum class ExtentKind : uint8_t {
  data,         // this layer stores the bytes (they may still happen to be zero)
  zero,         // this layer says the range reads as zeros (zero cluster, hole)
  unallocated,  // this layer says nothing: reads fall through to the backing file,
                // or read as zeros when there is none
};

const char* to_string(ExtentKind kind);

// The status of a run of bytes in one layer.
struct LayerStatus {
  ExtentKind kind;
  uint64_t length;                      // bytes from the queried offset with this status
  std::optional<uint64_t> host_offset;  // where the data lives in this layer's file
  bool compressed = false;
};

// One entry of BlockDevice::map: the status of a run as seen through the whole chain.
struct Extent {
  uint64_t offset;
  uint64_t length;
  ExtentKind kind;  // unallocated only when no layer of the chain holds the range
  int depth;        // 0 = this image, 1 = its backing file, ...; for unallocated: the bottom
  std::optional<uint64_t> host_offset;
  bool compressed = false;
  std::string file;  // the file of the layer that holds it
};

// Facts for `image info`; format_specific holds what only that format knows.
struct ImageInfo {
  std::string filename;
  std::string format;
  uint64_t virtual_size = 0;
  uint64_t actual_size = 0;   // bytes allocated on the host
  uint64_t cluster_size = 0;  // allocation unit, 0 if none
  std::optional<std::string> backing_file;       // as recorded in the image
  std::optional<std::string> backing_format;     // as recorded in the image
  std::optional<std::string> full_backing_file;  // resolved path
  bool dirty = false;
  bool encrypted = false;  // info describes it; arche reads none of its data
  Json format_specific = Json::object();
  Json snapshots = Json::array();
};

// One block for BlockDevice::write_packed.
struct PackedBlock {
  uint64_t offset;
  std::span<const uint8_t> block;   // the data
  std::span<const uint8_t> packed;  // its compressed form from pack(); empty: store `block`
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual uint64_t size() const = 0;
  virtual bool writable() const = 0;
  // Format name as used on the command line ("raw", "qcow2").
  virtual std::string format() const = 0;
  // The name this layer is opened by: its file, or for a mirror "mirror:A+B".
  virtual std::string filename() const = 0;
  // The files this layer keeps its bytes in: filename() for every driver but the
  // mirror, which is one layer over several legs. Whoever must tell whether a layer
  // changed (backup's incremental tracking) looks at all of them: layer_identity().
  virtual std::vector<std::string> files() const { return {filename()}; }

  // Reads out.size() bytes at offset. Offset + length must be within size().
  virtual void read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Makes the range read as zeros. With may_unmap the driver may release storage.
  virtual void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) = 0;
  // Tells the device the range is unused. Blocks of granularity() fully inside the
  // range read as zeros afterwards; the partial blocks at the edges are unchanged.
  virtual void discard(uint64_t offset, uint64_t length) = 0;
  // Makes everything written so far durable.
  virtual void flush() = 0;

  // Status of this layer alone at offset, for at most max_length bytes.
  virtual LayerStatus layer_status(uint64_t offset, uint64_t max_length) = 0;
  // The next layer of the chain, or nullptr.
  virtual BlockDevice* backing() const { return nullptr; }
  // The unit of allocation and of discard (cluster size; 4096 for raw files).
  virtual uint64_t granularity() const = 0;

  // Compressed writes, for drivers that store compressed blocks (qcow2,
  // streamOptimized VMDK). They come in two steps so that writers compress on all
  // cores and only the storing is serial: pack() compresses one granularity block
  // (the disk's last may be short) on the calling thread without touching the
  // device; write_packed() stores blocks pack() prepared, in one call.
  virtual bool supports_compressed_writes() const { return false; }
  // True when the device compresses whatever it stores (a streamOptimized VMDK):
  // writers then pack blocks on their own threads instead of calling write().
  virtual bool compresses_every_write() const { return false; }
  // Bytes pack() may need for one block.
  virtual size_t packed_bound() const { return 0; }
  // Compresses `block` into `out` (packed_bound() bytes); returns the length, or 0
  // when compression does not pay and the block is to be stored as it is.
  virtual size_t pack(std::span<const uint8_t> block, std::span<uint8_t> out) const;
  // Stores each block at its offset (a multiple of granularity()), compressed as
  // pack() gave it (`packed` empty: as it is).
  virtual void write_packed(std::span<const PackedBlock> blocks);

  // True when writes must come in increasing, non-overlapping order (a
  // streamOptimized VMDK being written front to back). Writers such as convert then
  // issue them in order.
  virtual bool sequential_writes_only() const { return false; }

  // Stores [offset, offset+length) by sharing the extents of `source` at
  // source_offset with it (FICLONERANGE: XFS with reflink, btrfs) instead of
  // copying the bytes: convert's fast path. offset and length are multiples of
  // granularity(), and the range holds no data in this layer yet. False when
  // this layer cannot — a format that does not store data at plain file offsets,
  // another file system, one that cannot share extents, offsets the file system
  // cannot share at —; the caller then writes the range the usual way (a part of
  // it may already share the source's extents, which holds the same bytes).
  virtual bool clone_from(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length);

  // Changes the virtual size. Shrinking drops the data beyond the new end.
  virtual void resize(uint64_t new_size);

  virtual ImageInfo info() const = 0;

  // The status of [offset, offset+length) through the whole chain, as extents that
  // cover the range exactly, adjacent extents of the same kind/depth merged.
  std::vector<Extent> map(uint64_t offset, uint64_t length);
  std::vector<Extent> map() { return map(0, size()); }

  // True when the whole range reads as zeros according to metadata alone.
  bool known_zero(uint64_t offset, uint64_t length);

 protected:
  // Bounds check shared by all drivers: throws a usage error when the request
  // reaches beyond size().
  void check_request(uint64_t offset, uint64_t length, const char* op) const;
  // Reads from the backing layer, zero-filling what lies beyond its end. Drivers
  // with a backing chain call this for their unallocated ranges.
  void read_from_backing(uint64_t offset, std::span<uint8_t> out) const;
};

// One file of a layer as stat(2) sees it. The same path, device, inode, size and
// times mean the same, unchanged file (ctime cannot be set from user space).
struct FileIdentity {
  std::string path;  // absolute, symlinks resolved where the file exists
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool regular = false;  // false for block devices: writes do not change their times
};

// The identity of each of the layer's files(), stat'ed now. Throws when one is gone.
std::vector<FileIdentity> layer_identity(const BlockDevice& layer);

// Chain depth (number of layers) below and including `top`.
int chain_length(const BlockDevice& top);

}  // namespace arche::image
