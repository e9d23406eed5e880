#include "volume/ext_journal.h"

#include <cstring>
#include <map>
#include <vector>

#include "core/crc32c.h"
#include "core/endian.h"
#include "core/error.h"
#include "volume/ext_io.h"

namespace arche::volume::ext {

namespace {

constexpr uint32_t kMagic = 0xc03b3998;
enum BlockType : uint32_t { kDescriptor = 1, kCommit = 2, kSuperV1 = 3, kSuperV2 = 4, kRevoke = 5 };
constexpr uint32_t kIncompatRevoke = 0x1, kIncompat64bit = 0x2, kIncompatCsumV2 = 0x8, kIncompatCsumV3 = 0x10,
                   kIncompatFastCommit = 0x20;
constexpr uint32_t kKnownIncompat = kIncompatRevoke | kIncompat64bit | 0x4 /* async commit */ | kIncompatCsumV2 |
                                    kIncompatCsumV3 | kIncompatFastCommit;
constexpr uint32_t kTagEscape = 0x1, kTagSameUuid = 0x2, kTagLast = 0x8;
constexpr uint32_t kDefaultFastCommitBlocks = 256;

// The kernel's crc32c(seed, ...) has no pre/post inversion; core's has both.
uint32_t raw_crc32c(uint32_t seed, const void* data, size_t n) { return ~crc32c(~seed, data, n); }

// Sequence numbers wrap: compare as the kernel does.
bool tid_gt(uint32_t x, uint32_t y) { return static_cast<int32_t>(x - y) > 0; }

class Journal {
 public:
  explicit Journal(ext2_filsys fs) : fs_(fs) {}

  ReplayResult run() {
    load();
    ReplayResult r;
    if (start_ == 0) return r;  // nothing logged since the last clean checkpoint
    if (fast_commit_)
      r.notes.push_back("the journal has fast-commit records, which are not replayed: changes of the last moments "
                        "before the crash may be missing");
    scan(r);
    pass(false, r);
    pass(true, r);
    return r;
  }

 private:
  void load() {
    ext2_ino_t ino = fs_->super->s_journal_inum;
    if (ino == 0) fail(ErrorCategory::unsupported, "the journal is on another device; it cannot be replayed");
    errcode_t err = ext2fs_read_inode(fs_, ino, &inode_);
    if (err) fail(ErrorCategory::corrupt, "journal inode {}: {}", ino, error_text(err));
    ino_ = ino;
    bs_ = fs_->blocksize;
    block_.resize(bs_);
    read_log(0, block_);
    const uint8_t* b = block_.data();
    if (load_be32(b) != kMagic || (load_be32(b + 4) != kSuperV1 && load_be32(b + 4) != kSuperV2))
      fail(ErrorCategory::corrupt, "the journal superblock has no JBD2 magic");
    if (load_be32(b + 12) != bs_)
      fail(ErrorCategory::corrupt, "the journal's block size {} differs from the file system's {}", load_be32(b + 12), bs_);
    maxlen_ = load_be32(b + 16);
    first_ = load_be32(b + 20);
    sequence_ = load_be32(b + 24);
    start_ = load_be32(b + 28);
    if (load_be32(b + 4) == kSuperV2) {
      incompat_ = load_be32(b + 40);
      if (incompat_ & ~kKnownIncompat)
        fail(ErrorCategory::unsupported, "the journal uses unknown features (0x{:x})", incompat_ & ~kKnownIncompat);
      std::memcpy(uuid_, b + 48, 16);
    }
    const uint64_t inode_blocks = EXT2_I_SIZE(&inode_) / bs_;
    fast_commit_ = incompat_ & kIncompatFastCommit;
    uint32_t fc_blocks = fast_commit_ ? load_be32(b + 0x54) : 0;
    if (fast_commit_ && fc_blocks == 0) fc_blocks = kDefaultFastCommitBlocks;
    if (maxlen_ > inode_blocks || fc_blocks >= maxlen_)
      fail(ErrorCategory::corrupt, "the journal claims {} blocks but its inode holds {}", maxlen_, inode_blocks);
    last_ = maxlen_ - fc_blocks;
    if (first_ == 0 || first_ >= last_)
      fail(ErrorCategory::corrupt, "the journal's log starts at block {} of {}", first_, last_);
    if (start_ != 0 && (start_ < first_ || start_ >= last_))
      fail(ErrorCategory::corrupt, "the journal's log start {} lies outside {}-{}", start_, first_, last_);
    csum_ = incompat_ & (kIncompatCsumV2 | kIncompatCsumV3);
    seed_ = raw_crc32c(~0u, uuid_, 16);
    if (incompat_ & kIncompatCsumV3) {
      tag_bytes_ = 16;
    } else {
      tag_bytes_ = 12 + ((incompat_ & kIncompatCsumV2) ? 2 : 0) - ((incompat_ & kIncompat64bit) ? 0 : 4);
    }
  }

  // Journal block `n` (logical in the journal inode) into `out`.
  void read_log(uint32_t n, std::vector<uint8_t>& out) {
    blk64_t phys = 0;
    errcode_t err = ext2fs_bmap2(fs_, ino_, &inode_, nullptr, 0, n, nullptr, &phys);
    if (err || phys == 0 || phys >= ext2fs_blocks_count(fs_->super))
      fail(ErrorCategory::corrupt, "journal block {} is not mapped to the file system ({})", n,
           err ? error_text(err) : "no block");
    err = io_channel_read_blk64(fs_->io, phys, 1, out.data());
    if (err) fail(ErrorCategory::io, "journal block {}: {}", n, error_text(err));
  }

  uint32_t next(uint32_t n) const { return n + 1 >= last_ ? first_ : n + 1; }

  bool tail_ok(const std::vector<uint8_t>& b) const {
    if (!csum_) return true;
    std::vector<uint8_t> copy = b;
    const uint32_t stored = load_be32(copy.data() + bs_ - 4);
    store_be32(copy.data() + bs_ - 4, 0);
    return raw_crc32c(seed_, copy.data(), bs_) == stored;
  }

  bool commit_ok(const std::vector<uint8_t>& b) const {
    if (!csum_) return true;
    std::vector<uint8_t> copy = b;
    const uint32_t stored = load_be32(copy.data() + 16);
    store_be32(copy.data() + 16, 0);
    return raw_crc32c(seed_, copy.data(), bs_) == stored;
  }

  struct Tag {
    uint64_t block;
    uint32_t flags;
    uint32_t checksum;
  };

  std::vector<Tag> tags(const std::vector<uint8_t>& b) const {
    std::vector<Tag> out;
    const size_t end = bs_ - (csum_ ? 4 : 0);
    size_t pos = 12;
    while (pos + tag_bytes_ <= end) {
      const uint8_t* t = b.data() + pos;
      Tag tag{load_be32(t), 0, 0};
      if (incompat_ & kIncompatCsumV3) {
        tag.flags = load_be32(t + 4);
        tag.block |= uint64_t{load_be32(t + 8)} << 32;
        tag.checksum = load_be32(t + 12);
      } else {
        tag.checksum = load_be16(t + 4);
        tag.flags = load_be16(t + 6);
        if (incompat_ & kIncompat64bit) tag.block |= uint64_t{load_be32(t + 8)} << 32;
      }
      pos += tag_bytes_;
      if (!(tag.flags & kTagSameUuid)) pos += 16;
      out.push_back(tag);
      if (tag.flags & kTagLast) break;
    }
    return out;
  }

  bool data_ok(const Tag& tag, uint32_t seq, const std::vector<uint8_t>& data) const {
    if (!csum_) return true;
    uint8_t be_seq[4];
    store_be32(be_seq, seq);
    uint32_t c = raw_crc32c(seed_, be_seq, 4);
    c = raw_crc32c(c, data.data(), bs_);
    return (incompat_ & kIncompatCsumV3) ? c == tag.checksum : (c & 0xffff) == tag.checksum;
  }

  // Pass 1: where the log ends (the first transaction without a valid commit).
  void scan(ReplayResult& r) {
    uint32_t seq = sequence_, n = start_;
    uint64_t walked = 0;
    const uint64_t log_blocks = last_ - first_;
    while (walked++ < log_blocks) {
      read_log(n, block_);
      const uint8_t* b = block_.data();
      if (load_be32(b) != kMagic || load_be32(b + 8) != seq) break;
      const uint32_t type = load_be32(b + 4);
      if (type == kDescriptor) {
        if (!tail_ok(block_)) {
          r.notes.push_back(fmt::format("journal: descriptor block {} fails its checksum; the log ends there", n));
          break;
        }
        std::vector<Tag> t = tags(block_);
        walked += t.size();
        for (size_t i = 0; i <= t.size(); ++i) n = next(n);
        continue;
      }
      if (type == kCommit) {
        if (!commit_ok(block_)) {
          r.notes.push_back(fmt::format("journal: the commit of transaction {} fails its checksum; the log ends there", seq));
          break;
        }
        ++seq;
      } else if (type != kRevoke) {
        break;
      }
      n = next(n);
    }
    if (walked > log_blocks) r.notes.push_back("journal: the log wraps onto itself; replayed up to there");
    end_ = seq;
  }

  // Pass 2 (replay=false): collect revokes. Pass 3 (replay=true): write blocks.
  void pass(bool replay, ReplayResult& r) {
    uint32_t seq = sequence_, n = start_;
    std::vector<uint8_t> data(bs_);
    const uint64_t fs_blocks = ext2fs_blocks_count(fs_->super);
    uint64_t walked = 0;
    const uint64_t log_blocks = last_ - first_;
    while (tid_gt(end_, seq) && walked++ < log_blocks) {
      read_log(n, block_);
      const uint8_t* b = block_.data();
      if (load_be32(b) != kMagic || load_be32(b + 8) != seq) break;
      const uint32_t type = load_be32(b + 4);
      if (type == kDescriptor) {
        std::vector<Tag> t = tags(block_);
        for (const Tag& tag : t) {
          n = next(n);
          ++walked;
          if (!replay) continue;
          if (auto it = revoked_.find(tag.block); it != revoked_.end() && !tid_gt(seq, it->second)) continue;
          read_log(n, data);
          if (tag.flags & kTagEscape) store_be32(data.data(), kMagic);
          if (!data_ok(tag, seq, data)) {
            r.notes.push_back(fmt::format("journal: block {} of transaction {} fails its checksum; not replayed",
                                          tag.block, seq));
            continue;
          }
          if (tag.block == 0 || tag.block >= fs_blocks) {
            r.notes.push_back(fmt::format("journal: transaction {} logs block {}, outside the file system; ignored", seq,
                                          tag.block));
            continue;
          }
          errcode_t err = io_channel_write_blk64(fs_->io, tag.block, 1, data.data());
          if (err) fail(ErrorCategory::internal, "journal replay: {}", error_text(err));
          ++r.blocks;
        }
      } else if (type == kRevoke && !replay) {
        if (!tail_ok(block_)) {
          r.notes.push_back(fmt::format("journal: revoke block {} fails its checksum; ignored", n));
        } else {
          const size_t width = (incompat_ & kIncompat64bit) ? 8 : 4;
          const size_t used = std::min<size_t>(load_be32(b + 12), bs_ - (csum_ ? 4 : 0));
          for (size_t pos = 16; pos + width <= used; pos += width) {
            const uint64_t blk = width == 8 ? load_be64(b + pos) : load_be32(b + pos);
            auto [it, fresh] = revoked_.try_emplace(blk, seq);
            if (!fresh && tid_gt(seq, it->second)) it->second = seq;
          }
        }
      } else if (type == kCommit) {
        if (replay) ++r.transactions;
        ++seq;
      }
      n = next(n);
    }
  }

  ext2_filsys fs_;
  ext2_ino_t ino_ = 0;
  struct ext2_inode inode_ {};
  uint32_t bs_ = 0, maxlen_ = 0, first_ = 0, last_ = 0, sequence_ = 0, start_ = 0, end_ = 0;
  uint32_t incompat_ = 0, seed_ = 0;
  uint8_t uuid_[16] = {};
  bool csum_ = false, fast_commit_ = false;
  size_t tag_bytes_ = 8;
  std::vector<uint8_t> block_;
  std::map<uint64_t, uint32_t> revoked_;  // block -> latest transaction that revoked it
};

}  // namespace

ReplayResult replay_journal(ext2_filsys fs) { return Journal(fs).run(); }

}  // namespace arche::volume::ext
