// A qcow2 image as a BlockDevice: reads through L1/L2 tables (falling through to
// the backing chain), copy-on-write allocation at cluster granularity, zero
// clusters, compressed clusters, discard, resize, and ordered metadata write-back.
//
// Locking: a shared_mutex guards the metadata. Reads, and writes into clusters that
// are already allocated and exclusively owned, run under the shared lock, in
// parallel; anything that changes metadata takes it exclusively.
//
// Write ordering (see docs/image.md): data and refcounts reach the file before the
// L2 tables that point at them, L2 tables before the L1 entries that point at them,
// and clusters are freed only after no table on disk points at them. Metadata is
// cached and written at flush(), when the caches fill, and at close.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/qcow2/qcow2_format.h"
#include "image/qcow2/refcounts.h"
#include "image/qcow2/table_cache.h"

namespace arche::image::qcow2 {

class Qcow2Device final : public BlockDevice {
 public:
  static std::unique_ptr<Qcow2Device> open(const std::string& path, const OpenOptions& options, ChainState& chain);
  ~Qcow2Device() override;

  uint64_t size() const override;
  bool writable() const override { return file_.writable(); }
  std::string format() const override { return "qcow2"; }
  std::string filename() const override { return file_.path(); }

  void read(uint64_t offset, std::span<uint8_t> out) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  void write_zeroes(uint64_t offset, uint64_t length, bool may_unmap) override;
  void discard(uint64_t offset, uint64_t length) override;
  void flush() override;
  LayerStatus layer_status(uint64_t offset, uint64_t max_length) override;
  BlockDevice* backing() const override { return backing_.get(); }
  uint64_t granularity() const override { return cluster_size_; }
  bool supports_compressed_writes() const override { return true; }
  size_t packed_bound() const override { return max_compressed_length(cluster_bits_); }
  size_t pack(std::span<const uint8_t> block, std::span<uint8_t> out) const override;
  void write_packed(std::span<const PackedBlock> blocks) override;
  bool clone_from(uint64_t offset, const File& source, uint64_t source_offset, uint64_t length) override;
  void resize(uint64_t new_size) override;
  ImageInfo info() const override;

  // Records a new backing file (empty: none) in the header and uses `device` (may
  // be null) for reads from now on. The data is not touched (rebase -u).
  void set_backing(const std::string& backing_file, const std::string& backing_format,
                   std::unique_ptr<BlockDevice> device);
  // Drops every cluster of this layer: reads fall through to the backing file.
  void make_empty();
  // Writes all metadata and marks the image clean; errors are reported here
  // instead of being swallowed by the destructor.
  void close();

  const Header& header() const { return header_; }

 private:
  enum class ClusterType { unallocated, zero_plain, zero_alloc, normal, compressed };
  struct Run {
    ClusterType type;
    uint64_t length;  // bytes, from the queried offset
    uint64_t host;    // normal: host offset of the queried byte
    uint64_t entry;   // the L2 entry of the first cluster
  };

  Qcow2Device(File file, Header header, const OpenOptions& options);

  ClusterType classify(uint64_t entry, uint64_t guest_offset) const;
  Run lookup(uint64_t offset, uint64_t max_length);
  TableRef l2_table(uint64_t slot);
  TableRef l2_table_for_write(uint64_t slot);
  bool writable_in_place(uint64_t offset, uint64_t length);

  void read_compressed(uint64_t entry, std::span<uint8_t> cluster);
  void read_cluster_before_write(uint64_t guest_cluster, uint64_t entry, std::span<uint8_t> out);
  void write_locked(uint64_t offset, std::span<const uint8_t> data);
  void write_new_clusters(TableRef& l2, uint64_t first_cluster, uint64_t count, uint64_t offset,
                          std::span<const uint8_t> data);
  void zero_clusters_locked(uint64_t offset, uint64_t length, bool may_unmap, bool discard);
  uint64_t place_compressed(uint64_t length);
  void release_entry(uint64_t entry);
  void set_l2_entry(TableRef& l2, uint64_t index, uint64_t entry);
  bool reads_as_zero(uint64_t entry, uint64_t guest_offset) const;

  void mark_dirty_for_lazy_refcounts();
  void flush_metadata(bool durable);
  void write_l1_dirty();
  void write_header();
  void barrier();
  void writeback_if_full();
  void grow_l1(uint64_t entries);
  void require_writable(const char* op) const;

  // Where the L2 entry of a guest offset lives: its slot in the L1 table, and its
  // index in that slot's L2 table. One L2 table maps l2_span() guest bytes.
  uint64_t l1_index(uint64_t guest_offset) const { return guest_offset >> (cluster_bits_ + l2_bits_); }
  uint64_t l2_index(uint64_t guest_offset) const { return (guest_offset >> cluster_bits_) & (l2_entries() - 1); }
  uint64_t l2_entries() const { return uint64_t{1} << l2_bits_; }
  uint64_t l2_span() const { return uint64_t{1} << (cluster_bits_ + l2_bits_); }

  File file_;
  Header header_;
  uint64_t cluster_size_;
  uint32_t cluster_bits_;
  uint32_t l2_bits_;
  bool barriers_;
  bool lazy_refcounts_;
  std::string backing_path_;
  std::unique_ptr<BlockDevice> backing_;
  std::vector<Snapshot> snapshots_;

  mutable std::shared_mutex lock_;
  std::vector<uint64_t> l1_;
  uint64_t l1_dirty_begin_ = UINT64_MAX, l1_dirty_end_ = 0;
  TableCache l2_cache_;
  std::unique_ptr<Refcounts> refcounts_;  // writable images only
  bool closed_ = false;

  // The last decompressed cluster: sequential small reads of a compressed image
  // would otherwise decompress the same cluster again and again.
  std::mutex decompressed_mutex_;
  uint64_t decompressed_entry_ = 0;
  std::vector<uint8_t> decompressed_;

  // Where the next compressed cluster goes (byte offset), 0 if none.
  uint64_t compressed_cursor_ = 0;
};

}  // namespace arche::image::qcow2
