// The virtual tape: a cartridge is one file that keeps what a tape keeps — records
// (blocks), filemarks and an end of data — with a capacity, an early-warning zone
// before its end, write protection and injectable read errors. VirtualTape plays
// the Linux st driver over such files (the same TapeSyscalls the real drive uses),
// so the drive code above it cannot tell them apart. A vtape library (vtape:DIR) is
// a directory of cartridges; library.h loads them into the one virtual drive.
//
// Cartridge file (docs/tape-format.md "Virtual tape"):
//   header (64): "ARCHVTAP" | major u16 (1) | minor u16 | capacity u64
//                | early-warning zone u64 | zeros | CRC32C of bytes 0..59 (u32)
//   blocks, each: kind u32 ("VREC" data, "VFMK" filemark) | length u32 | bytes
//   end of data: the end of the file (writing anywhere drops what follows, as on tape)
// Capacity counts the blocks' bytes (8 per block plus its data).
//
// st semantics it follows (Documentation/scsi/st.rst): a write that enters the
// early-warning zone succeeds and sets GMT_EOT; the next write fails with ENOSPC
// having written nothing; later writes succeed (so a trailer can be written) until
// the capacity is reached, then every write fails with ENOSPC. Filemarks may be
// written in the zone. A read of a filemark returns 0 and moves past it; at end of
// data a read returns 0 and GMT_EOD is set; a block longer than the buffer is
// ENOMEM. Opening read-write a cartridge whose file has no write permission bit is
// EROFS (write-protected, even for root). Read errors: the file CARTRIDGE.read-errors
// lists "FILE RECORD" pairs (tape file from 1, record in it from 0) whose reads fail
// with EIO.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tape/syscalls.h"

namespace arche::tape {

struct CartridgeInfo {
  uint64_t capacity = 0;
  uint64_t early_warning = 0;
};

// Makes an empty cartridge (blank: no label); refuses an existing file.
void create_cartridge(const std::string& path, const CartridgeInfo& info);
// Reads the header (format error when it is not a cartridge).
CartridgeInfo read_cartridge_info(const std::string& path);
// Bytes used by blocks.
uint64_t cartridge_used(const std::string& path);

class VirtualTape final : public TapeSyscalls {
 public:
  VirtualTape();
  ~VirtualTape() override;
  int open(const std::string& path, int flags) override;
  int close(int fd) override;
  int get_flags(int fd) override;
  int set_flags(int fd, int flags) override;
  ssize_t read(int fd, void* buffer, size_t length) override;
  ssize_t write(int fd, const void* data, size_t length) override;
  int mt_op(int fd, const mtop& op) override;
  int mt_status(int fd, mtget& status) override;

 private:
  struct Block {
    uint64_t offset;  // of its 8-byte header in the file
    uint32_t kind;
    uint32_t length;
  };
  bool valid(int fd) const { return fd == kFd && file_ >= 0; }
  int append(uint32_t kind, const void* data, uint32_t length);
  uint64_t used() const;
  uint32_t file_number_at(size_t position) const;  // 0-based, as st counts
  uint64_t block_in_file(size_t position) const;

  static constexpr int kFd = 1000;
  int file_ = -1;
  int flags_ = 0;
  bool writable_ = false, protected_ = false;
  CartridgeInfo info_;
  std::vector<Block> blocks_;
  size_t position_ = 0;  // index of the next block
  enum class Warning { none, crossed, reported } warning_ = Warning::none;
  std::vector<std::pair<uint32_t, uint64_t>> read_errors_;  // (file from 1, record)
  bool dirty_ = false;
  static constexpr uint64_t kWritebackStep = 8u << 20;
  uint64_t unflushed_ = 0;  // bytes appended since writeback was last started
  bool eod_hit_ = false;  // the last read found end of data, or MTEOM went there
};

}  // namespace arche::tape
