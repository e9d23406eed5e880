// Writing a streamOptimized extent front to back, as ESXi exports and OVA packages
// carry it: header and descriptor, then for every grain holding data a grain marker
// (LBA, compressed size) with the zlib-compressed grain, a grain table marker and
// table after the grains each table covers, and at the end the grain directory, a
// footer (a copy of the header with the real GD offset) and the end-of-stream marker.
//
// Writes must come in increasing, non-overlapping order (BlockDevice::
// sequential_writes_only()). Whole grains of one write are compressed in parallel;
// only the append is serial. Writers that compress on their own threads (convert)
// pack() grains and hand them over with write_packed(). All-zero grains are not
// stored.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "core/file.h"
#include "core/thread_pool.h"
#include "image/block_device.h"
#include "image/vmdk/vmdk_format.h"

namespace arche::image::vmdk {

class StreamWriter {
 public:
  // `header` is the extent's header as created (gd_offset = kGdAtEnd); the stream
  // is (re)written from header.overhead on.
  StreamWriter(const File& file, SparseHeader header, int compression_level);

  void write(uint64_t offset, std::span<const uint8_t> data);
  // Bytes pack() may need for one grain.
  size_t packed_bound() const;
  // Compresses one grain (the disk's short last grain zero-padded) into `out`;
  // returns the length. Any thread, no lock taken.
  size_t pack(std::span<const uint8_t> grain, std::span<uint8_t> out) const;
  // Appends whole grains that pack() compressed, in increasing order.
  void write_packed(std::span<const PackedBlock> blocks);
  // Zeros need no grains; they only move the write position on.
  void skip(uint64_t offset, uint64_t length);
  // Writes what is complete and a provisional end (pending grain, grain table,
  // grain directory, footer, end-of-stream) after it, so the file is a complete,
  // valid stream now. Later writes continue over the provisional end.
  void flush(bool durable);
  // Writes the final end of the stream.
  void finish();

 private:
  struct Builder {
    uint64_t cursor = 0;            // file offset where `out` begins
    std::vector<uint8_t> out;       // appended bytes not yet in the file
    std::vector<uint32_t> gd;       // grain directory
    std::vector<uint32_t> gt;       // the grain table being filled
    int64_t gt_index = -1;          // which one, -1: none
    bool gt_used = false;
    uint64_t position() const { return cursor + out.size(); }
  };

  void append_grain(Builder& b, uint64_t grain, std::span<const uint8_t> packed) const;
  void close_grain_table(Builder& b) const;
  void append_tail(Builder& b) const;
  void emit_pending(Builder& b);
  void write_out(Builder& b);
  void check_order(uint64_t offset, uint64_t length);
  uint64_t grain_bytes_at(uint64_t grain) const;  // the last grain may be short

  const File& file_;
  SparseHeader header_;
  int level_;
  uint64_t grain_bytes_;
  uint64_t disk_bytes_;
  std::mutex mutex_;
  Builder b_;
  uint64_t watermark_ = 0;  // writes must start at or after this
  // The grain partly written so far (zero-filled elsewhere).
  int64_t pending_grain_ = -1;
  std::vector<uint8_t> pending_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace arche::image::vmdk
