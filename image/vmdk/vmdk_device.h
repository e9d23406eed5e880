// A VMDK image as a BlockDevice: a descriptor (embedded in a monolithic sparse
// extent, or a separate text file) and the extents it names, laid end to end:
// hosted sparse extents (grain directory -> grain tables -> grains, optionally
// deflate-compressed with markers: streamOptimized), flat extents (a file, or part
// of one) and ZERO extents. A child disk names its parent by parentFileNameHint
// and parentCID; unallocated grains fall through to it.
//
// Writes: sparse extents allocate grains at the end of their file (grain tables
// too, where an image has none preallocated); the grain tables and their redundant
// copies are cached and written back together, after the data they point at.
// Flat extents are written in place. A streamOptimized image can only be written
// front to back, and only when it holds no data yet (a fresh conversion target).
//
// Locking: a shared_mutex guards the metadata. Reads, and writes into grains that
// are already allocated, run under the shared lock; allocation takes it exclusively.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/vmdk/vmdk_format.h"
#include "image/vmdk/vmdk_stream.h"

namespace arche::image::vmdk {

class VmdkDevice;
// Checks the metadata of an image opened read-only (vmdk_check.cpp).
CheckResult check_device(VmdkDevice& dev);

class VmdkDevice final : public BlockDevice {
 public:
  static std::unique_ptr<VmdkDevice> open(const std::string& path, const OpenOptions& options, ChainState& chain);
  ~VmdkDevice() override;

  uint64_t size() const override { return size_; }
  bool writable() const override { return writable_; }
  std::string format() const override { return "vmdk"; }
  std::string filename() const override { return path_; }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  BlockDevice* backing() const override { return backing_.get(); }
  uint64_t granularity() const override { return granularity_; }
  bool supports_compressed_writes() const override { return stream_ != nullptr; }
  bool compresses_every_write() const override { return stream_ != nullptr; }
  size_t packed_bound() const override;
  size_t pack(std::span<const uint8_t> block, std::span<uint8_t> out) const override;
  void write_packed(std::span<const PackedBlock> blocks) override;
  bool sequential_writes_only() const override { return stream_ != nullptr; }
  ImageInfo info() const override;

  // Writes all metadata (or the end of a stream) and marks the image clean; errors
  // are reported here instead of being swallowed by the destructor.
  void close();

  uint32_t cid() const { return descriptor_.cid; }
  const Descriptor& descriptor() const { return descriptor_; }
  // What the image is, by its structure: monolithicSparse, streamOptimized, or the
  // descriptor's createType for images with a separate descriptor file.
  std::string subformat() const;

 private:
  friend CheckResult check_device(VmdkDevice& dev);

  struct GrainTable {
    std::vector<uint32_t> entries;
    bool dirty = false;
  };
  using GtRef = std::shared_ptr<GrainTable>;

  struct Sparse {
    SparseHeader header;
    uint64_t grain_bytes = 0;
    std::vector<uint32_t> gd;
    std::vector<uint32_t> rgd;  // empty: no redundant directory
    bool gd_dirty = false;
    uint64_t file_end = 0;  // where the next grain goes (grain aligned)
    std::mutex cache_mutex;
    std::unordered_map<uint64_t, GtRef> gts;  // by directory index
  };

  struct Extent {
    ExtentLine line;
    uint64_t start = 0;   // byte offset in the virtual disk
    uint64_t length = 0;  // bytes
    int file = -1;        // index into files_, -1 for ZERO
    uint64_t file_offset = 0;  // flat: bytes
    std::unique_ptr<Sparse> sparse;
  };

  enum class Kind { unallocated, zero, data, compressed };
  struct Run {
    Kind kind;
    uint64_t length;
    uint64_t host = 0;  // data: file offset of the queried byte; compressed: of the grain marker
    const Extent* extent = nullptr;
  };

  VmdkDevice() = default;

  void open_monolithic(const File& file, const SparseHeader& header, const OpenOptions& options);
  void open_descriptor_file(const OpenOptions& options, std::span<const uint8_t> text);
  void add_sparse_extent(Extent& e, const File& file, SparseHeader header, const std::string& what);
  SparseHeader read_footer(const File& file, const std::string& what) const;
  static std::vector<uint32_t> read_u32_table(const File& f, uint64_t offset, uint64_t entries);
  void open_parent(const OpenOptions& options, ChainState& chain);

  size_t extent_index(uint64_t offset) const;
  Run lookup(uint64_t offset, uint64_t max_length);
  GtRef grain_table(const Extent& e, uint64_t gd_index);
  Kind classify(const Extent& e, uint32_t gte, uint64_t guest) const;
  void read_grain(const Run& r, uint64_t offset, std::span<uint8_t> out);
  void read_compressed_grain(const Extent& e, uint64_t host, uint64_t grain_start, std::span<uint8_t> grain);

  void require_writable(const char* op) const;
  void mark_modified();
  void write_extent_locked(Extent& e, uint64_t rel, std::span<const uint8_t> data);
  bool write_fresh_grains(std::unique_lock<std::shared_mutex>& lock, uint64_t offset, std::span<const uint8_t> data);
  bool allocated_in_place(uint64_t offset, uint64_t length);
  GtRef grain_table_for_write(Extent& e, uint64_t gd_index);
  uint64_t allocate(Extent& e, uint64_t bytes);
  void zero_range_locked(uint64_t offset, uint64_t length, bool unmap, bool whole_grains_only);
  void flush_metadata(bool durable);
  void write_headers(bool unclean);
  void barrier();
  const File& file_of(const Extent& e) const { return *files_[static_cast<size_t>(e.file)]; }

  std::string path_;
  bool writable_ = false;
  bool barriers_ = true;
  uint64_t size_ = 0;
  uint64_t granularity_ = 4096;
  std::vector<std::unique_ptr<File>> files_;  // files_[0]: the file opened (descriptor)
  std::vector<std::string> file_paths_;
  bool embedded_descriptor_ = false;
  uint64_t descriptor_offset_ = 0;  // embedded: bytes
  uint64_t descriptor_room_ = 0;    // embedded: bytes available
  std::string descriptor_text_;
  Descriptor descriptor_;
  std::vector<Extent> extents_;
  std::string parent_path_;
  std::unique_ptr<BlockDevice> backing_;

  mutable std::shared_mutex lock_;
  bool modified_ = false;  // CID updated and headers marked unclean
  bool closed_ = false;
  std::unique_ptr<StreamWriter> stream_;

  std::mutex decompressed_mutex_;
  uint64_t decompressed_host_ = 0;
  const Extent* decompressed_extent_ = nullptr;
  std::vector<uint8_t> decompressed_;
};

}  // namespace arche::image::vmdk
