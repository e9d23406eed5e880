// Consistency check and repair of qcow2 metadata, reading the file directly (not
// through Qcow2Device) so that it works on images too damaged to open for writing.
//
// The check counts, for every host cluster, the references the metadata makes to
// it (header, L1/L2 tables of the active state and of each internal snapshot, data
// clusters, refcount structures, bitmaps) and compares them with the stored
// refcounts: more stored than referenced is a leak (wasted space), fewer is a
// corruption (the cluster could be handed out twice). Repair fixes leaks in place and
// rebuilds the refcount structures from scratch when they are wrong.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/bytes.h"
#include "core/endian.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/units.h"
#include "image/qcow2/qcow2_driver.h"
#include "image/qcow2/qcow2_format.h"

namespace arche::image::qcow2 {

namespace {

constexpr size_t kMaxMessages = 1000;

struct EntryFix {
  uint64_t table_offset;  // L1 or L2 table in the file
  uint64_t index;
  uint64_t value;
};

class Checker {
 public:
  explicit Checker(const File& file) : f_(file) {}

  CheckResult analyze();

  // Repairs, each followed by a fresh analysis (they change what is referenced).
  bool has_pointer_fixes() const { return !pointer_fixes_.empty(); }
  bool has_copied_fixes() const { return !copied_fixes_.empty(); }
  bool refcounts_wrong() const { return refcount_errors_ > 0 || refcount_structure_broken_; }
  bool has_leaks() const { return !leaks_.empty(); }
  void apply_pointer_fixes() { apply_fixes(pointer_fixes_); }
  void apply_copied_fixes() { apply_fixes(copied_fixes_); }
  void fix_leaks();
  void rebuild_refcounts();
  // Clears the dirty and corrupt bits after a successful repair.
  void mark_clean(bool clear_corrupt);

 private:
  void load_header();
  void count(uint64_t offset, uint64_t bytes, const std::string& what, uint64_t times = 1);
  void collect_l1(uint64_t l1_offset, uint64_t l1_size, bool active);
  void count_l2_tables();
  void count_l2(uint64_t l2_offset, uint64_t times, uint64_t active_times);
  void count_snapshots();
  void count_bitmaps();
  void count_refcount_structures();
  uint64_t stored_refcount(uint64_t cluster);
  uint64_t refcount_entry(const std::vector<uint8_t>& block, uint64_t index) const;
  void set_refcount_entry(std::vector<uint8_t>& block, uint64_t index, uint64_t value) const;
  void compare_refcounts();
  void check_copied_flags();
  void corruption(std::string message) {
    ++r_.corruptions;
    note(std::move(message));
  }
  // Keeps the first messages; a badly damaged image would otherwise produce millions.
  void note(std::string message) {
    if (r_.messages.size() < kMaxMessages) r_.messages.push_back(std::move(message));
    else ++suppressed_messages_;
  }
  void apply_fixes(const std::vector<EntryFix>& fixes);
  void write_header();
  std::vector<uint8_t> read_table(uint64_t offset);

  const File& f_;
  Header h_;
  uint64_t cs_ = 0;
  uint64_t file_size_ = 0;
  std::vector<uint32_t> refs_;
  // How often each L2 table is referenced (by the active L1 and by all L1 tables):
  // a table is walked once, its references counted that many times.
  struct L2Use {
    uint64_t total = 0;
    uint64_t active = 0;
  };
  std::map<uint64_t, L2Use> l2_uses_;
  std::vector<uint64_t> refcount_structure_clusters_;
  std::vector<uint64_t> rc_table_;
  bool refcount_structure_broken_ = false;
  std::map<uint64_t, std::vector<uint8_t>> block_cache_;
  std::vector<EntryFix> pointer_fixes_;  // entries pointing outside the file
  std::vector<EntryFix> copied_fixes_;   // wrong OFLAG_COPIED bits
  uint64_t refcount_errors_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> leaks_;  // (cluster, correct refcount)
  uint64_t suppressed_messages_ = 0;
  CheckResult r_;
};

void Checker::load_header() {
  file_size_ = f_.size();
  h_ = read_header(f_);
  refuse_encrypted(h_, f_.path());
  cs_ = h_.cluster_size();
}

std::vector<uint8_t> Checker::read_table(uint64_t offset) {
  std::vector<uint8_t> t(cs_, 0);
  f_.read_some(offset, t);
  return t;
}

// Adds `times` references to every cluster of [offset, offset+bytes).
void Checker::count(uint64_t offset, uint64_t bytes, const std::string& what, uint64_t times) {
  if (bytes == 0 || times == 0) return;
  uint64_t first = offset / cs_, last = (offset + bytes - 1) / cs_;
  if (!range_within(offset, bytes, align_up(file_size_, cs_))) {
    corruption(fmt::format("ERROR {} at 0x{:x} ({} bytes) lies beyond the end of the file", what, offset, bytes));
    if (file_size_ == 0) return;
    last = std::min(last, div_round_up(file_size_, cs_) - 1);
    if (first > last) return;
  }
  if (refs_.size() <= last) refs_.resize(last + 1, 0);
  for (uint64_t c = first; c <= last; ++c) refs_[c] = static_cast<uint32_t>(std::min<uint64_t>(UINT32_MAX, refs_[c] + times));
}

void Checker::count_l2(uint64_t l2_offset, uint64_t times, uint64_t active_times) {
  const bool active = active_times > 0;
  std::vector<uint8_t> t = read_table(l2_offset);
  uint64_t next_contiguous = 0;
  for (uint64_t i = 0; i < cs_ / 8; ++i) {
    uint64_t e = load_be64(t.data() + i * 8);
    if (e & kOflagCompressed) {
      CompressedRef ref = decode_compressed(e, h_.cluster_bits);
      r_.allocated_clusters += active_times;
      r_.compressed_clusters += active_times;
      r_.fragmented_clusters += active_times;
      count(ref.offset, ref.length, "compressed cluster", times);
      continue;
    }
    uint64_t host = e & kOffsetMask;
    bool bad_bits = (e & kL2StandardReservedMask) || (h_.version < 3 && (e & kOflagZero));
    if (host == 0) {
      if (bad_bits || (e & kOflagCopied)) {
        corruption(fmt::format("ERROR L2 entry {} of table 0x{:x} is invalid (0x{:016x})", i, l2_offset, e));
        if (active) pointer_fixes_.push_back({l2_offset, i, 0});
      }
      continue;
    }
    if (bad_bits || host < cs_ || !range_within(host, cs_, align_up(file_size_, cs_))) {
      corruption(fmt::format("ERROR L2 entry {} of table 0x{:x} points to 0x{:x}, {}", i, l2_offset, host,
                             bad_bits ? "with reserved bits set" : "outside the file"));
      // Repair: the cluster reads as zeros (its data is not in this file anyway).
      if (active) pointer_fixes_.push_back({l2_offset, i, h_.version >= 3 ? kOflagZero : 0});
      continue;
    }
    if (active) {
      r_.allocated_clusters += active_times;
      if (next_contiguous && host != next_contiguous) r_.fragmented_clusters += active_times;
      next_contiguous = host + cs_;
    }
    count(host, cs_, "data cluster", times);
  }
}

// Counts an L1 table and notes the L2 tables it references (walked later, once).
void Checker::collect_l1(uint64_t l1_offset, uint64_t l1_size, bool active) {
  count(l1_offset, l1_size * 8, active ? "L1 table" : "snapshot L1 table");
  std::vector<uint8_t> raw(l1_size * 8, 0);
  f_.read_some(l1_offset, raw);
  for (uint64_t i = 0; i < l1_size; ++i) {
    uint64_t e = load_be64(raw.data() + i * 8);
    uint64_t l2 = e & kOffsetMask;
    if (l2 == 0) continue;
    if ((e & kL1ReservedMask) || l2 < cs_ || !range_within(l2, cs_, align_up(file_size_, cs_))) {
      corruption(fmt::format("ERROR L1 entry {} (0x{:016x}) {}", i, e,
                             (e & kL1ReservedMask) ? "has reserved bits set" : "points outside the file"));
      if (active) pointer_fixes_.push_back({l1_offset, i, 0});
      continue;
    }
    L2Use& use = l2_uses_[l2];
    ++use.total;
    if (active) ++use.active;
  }
}

void Checker::count_l2_tables() {
  for (const auto& [offset, use] : l2_uses_) {
    interrupt::check();  // analysis only reads: stopping here changes nothing
    count(offset, cs_, "L2 table", use.total);
    count_l2(offset, use.total, use.active);
  }
}

void Checker::count_snapshots() {
  if (h_.nb_snapshots == 0) return;
  uint64_t table_bytes = 0;
  std::vector<Snapshot> snapshots = read_snapshots(f_, h_, &table_bytes);
  count(h_.snapshots_offset, table_bytes, "snapshot table");
  for (const Snapshot& s : snapshots) {
    if (s.l1_table_offset % cs_ || !range_within(s.l1_table_offset, uint64_t{s.l1_size} * 8, file_size_)) {
      corruption(fmt::format("ERROR snapshot '{}' has its L1 table outside the file", s.name));
      continue;
    }
    collect_l1(s.l1_table_offset, s.l1_size, false);
  }
}

void Checker::count_bitmaps() {
  if (!h_.bitmaps || h_.bitmaps->nb_bitmaps == 0) return;
  const BitmapsExtension& b = *h_.bitmaps;
  if (b.directory_offset % cs_ || b.directory_size > 64 * MiB || !range_within(b.directory_offset, b.directory_size, file_size_)) {
    corruption("ERROR bitmap directory lies outside the file");
    return;
  }
  count(b.directory_offset, b.directory_size, "bitmap directory");
  std::vector<uint8_t> raw(b.directory_size);
  f_.read_exact(b.directory_offset, raw);
  for (const BitmapDirectoryEntry& e : parse_bitmap_directory(raw, b.nb_bitmaps, f_.path())) {
    uint64_t bytes = uint64_t{e.table_size} * 8;
    if (e.table_offset % cs_ || !range_within(e.table_offset, bytes, file_size_)) {
      corruption(fmt::format("ERROR bitmap '{}' has its table outside the file", e.name));
      continue;
    }
    count(e.table_offset, bytes, "bitmap table");
    std::vector<uint8_t> table(bytes);
    f_.read_exact(e.table_offset, table);
    for (uint64_t i = 0; i < e.table_size; ++i) {
      uint64_t data = load_be64(table.data() + i * 8) & kOffsetMask;
      if (data) count(data, cs_, "bitmap data cluster");
    }
  }
}

void Checker::count_refcount_structures() {
  uint64_t table_bytes = uint64_t{h_.refcount_table_clusters} * cs_;
  count(h_.refcount_table_offset, table_bytes, "refcount table");
  for (uint64_t c = 0; c < h_.refcount_table_clusters; ++c)
    refcount_structure_clusters_.push_back(h_.refcount_table_offset / cs_ + c);
  std::vector<uint8_t> raw(table_bytes);
  f_.read_exact(h_.refcount_table_offset, raw);
  rc_table_.resize(table_bytes / 8);
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < rc_table_.size(); ++i) {
    uint64_t e = load_be64(raw.data() + i * 8);
    if (e == 0) continue;
    if ((e & kRefcountTableReservedMask) || e < cs_ || !range_within(e, cs_, align_up(file_size_, cs_))) {
      corruption(fmt::format("ERROR refcount block {} at 0x{:x} is {}", i, e,
                             (e & kRefcountTableReservedMask) ? "misaligned" : "outside the file"));
      refcount_structure_broken_ = true;
      continue;
    }
    if (!seen.insert(e).second) {
      // One block cannot describe two ranges; comparing it twice would also let a
      // damaged table make the check arbitrarily slow.
      corruption(fmt::format("ERROR refcount block {} at 0x{:x} is also used by another table entry", i, e));
      refcount_structure_broken_ = true;
      continue;
    }
    rc_table_[i] = e;
    count(e, cs_, "refcount block");
    refcount_structure_clusters_.push_back(e / cs_);
  }
}

uint64_t Checker::refcount_entry(const std::vector<uint8_t>& block, uint64_t index) const {
  return refcount_get(block, index, h_.refcount_order);
}

void Checker::set_refcount_entry(std::vector<uint8_t>& block, uint64_t index, uint64_t value) const {
  refcount_set(block, index, h_.refcount_order, value);
}

uint64_t Checker::stored_refcount(uint64_t cluster) {
  const uint64_t per_block = cs_ * 8 / h_.refcount_bits();
  uint64_t ti = cluster / per_block;
  if (ti >= rc_table_.size() || rc_table_[ti] == 0) return 0;
  auto it = block_cache_.find(rc_table_[ti]);  // by offset: a bad table may repeat one
  if (it == block_cache_.end()) it = block_cache_.emplace(rc_table_[ti], read_table(rc_table_[ti])).first;
  return refcount_entry(it->second, cluster % per_block);
}

void Checker::compare_refcounts() {
  const uint64_t per_block = cs_ * 8 / h_.refcount_bits();
  const uint64_t max_refcount = h_.refcount_order == 6 ? UINT64_MAX : (1ull << h_.refcount_bits()) - 1;
  auto compare = [&](uint64_t c, uint64_t stored) {
    uint64_t computed = c < refs_.size() ? refs_[c] : 0;
    if (computed) r_.image_end_offset = std::max(r_.image_end_offset, (c + 1) * cs_);
    if (stored == computed) return;
    if (computed > max_refcount) {
      ++refcount_errors_;
      corruption(fmt::format("ERROR cluster {} has {} references, more than {}-bit refcounts can hold", c, computed,
                             h_.refcount_bits()));
    } else if (stored > computed) {
      ++r_.leaks;
      note(fmt::format("Leaked cluster {} refcount={} reference={}", c, stored, computed));
      leaks_.emplace_back(c, computed);
    } else {
      ++refcount_errors_;
      corruption(fmt::format("ERROR cluster {} refcount={} reference={}", c, stored, computed));
    }
  };
  // Clusters covered by a refcount block: compare every entry, skipping blocks that
  // are all zero and describe only unreferenced clusters.
  for (uint64_t ti = 0; ti < rc_table_.size(); ++ti) {
    if (rc_table_[ti] == 0) continue;
    interrupt::check();
    const uint64_t first = ti * per_block;
    std::vector<uint8_t> block = read_table(rc_table_[ti]);
    if (first >= refs_.size() && all_zero(block)) continue;
    for (uint64_t i = 0; i < per_block; ++i) compare(first + i, refcount_get(block, i, h_.refcount_order));
  }
  // Referenced clusters without a refcount block have refcount 0.
  for (uint64_t c = 0; c < refs_.size(); ++c) {
    uint64_t ti = c / per_block;
    if (ti < rc_table_.size() && rc_table_[ti] != 0) continue;
    compare(c, 0);
  }
}

// Bit 63 of active L1/L2 entries must say whether the refcount is exactly one.
void Checker::check_copied_flags() {
  std::vector<uint8_t> l1(uint64_t{h_.l1_size} * 8, 0);
  f_.read_some(h_.l1_table_offset, l1);
  for (uint64_t i = 0; i < h_.l1_size; ++i) {
    uint64_t e = load_be64(l1.data() + i * 8);
    uint64_t l2 = e & kOffsetMask;
    if (l2 == 0 || (e & kL1ReservedMask) || !range_within(l2, cs_, align_up(file_size_, cs_))) continue;
    bool copied = stored_refcount(l2 / cs_) == 1;
    if (copied != static_cast<bool>(e & kOflagCopied)) {
      corruption(fmt::format("ERROR OFLAG_COPIED L2 table 0x{:x}: refcount={}", l2, stored_refcount(l2 / cs_)));
      copied_fixes_.push_back({h_.l1_table_offset, i, copied ? (e | kOflagCopied) : (e & ~kOflagCopied)});
    }
    std::vector<uint8_t> t = read_table(l2);
    for (uint64_t k = 0; k < cs_ / 8; ++k) {
      uint64_t le = load_be64(t.data() + k * 8);
      uint64_t host = le & kOffsetMask;
      bool compressed = le & kOflagCompressed;
      if (compressed) {
        if (le & kOflagCopied) {
          corruption(fmt::format("ERROR OFLAG_COPIED set on compressed cluster: l2_entry=0x{:x}", le));
          copied_fixes_.push_back({l2, k, le & ~kOflagCopied});
        }
        continue;
      }
      if (host == 0 || !range_within(host, cs_, align_up(file_size_, cs_))) continue;
      bool want = stored_refcount(host / cs_) == 1;
      if (want != static_cast<bool>(le & kOflagCopied)) {
        corruption(fmt::format("ERROR OFLAG_COPIED data cluster: l2_entry=0x{:x} refcount={}", le,
                               stored_refcount(host / cs_)));
        copied_fixes_.push_back({l2, k, want ? (le | kOflagCopied) : (le & ~kOflagCopied)});
      }
    }
  }
}

void Checker::fix_leaks() {
  const uint64_t per_block = cs_ * 8 / h_.refcount_bits();
  std::map<uint64_t, std::vector<uint8_t>> touched;
  for (auto [cluster, correct] : leaks_) {
    uint64_t ti = cluster / per_block;
    if (ti >= rc_table_.size() || rc_table_[ti] == 0) continue;
    auto it = touched.find(ti);
    if (it == touched.end()) it = touched.emplace(ti, read_table(rc_table_[ti])).first;
    set_refcount_entry(it->second, cluster % per_block, correct);
  }
  for (auto& [ti, block] : touched) f_.write_all(rc_table_[ti], block);
  f_.sync_data();
}

// New refcount table and blocks at the end of the file, computed from the references
// alone; the header switches to them last, so a crash leaves the old ones in use.
void Checker::rebuild_refcounts() {
  std::vector<uint32_t> refs = refs_;
  for (uint64_t c : refcount_structure_clusters_)
    if (c < refs.size() && refs[c] > 0) --refs[c];
  uint64_t end = div_round_up(file_size_, cs_);
  for (uint64_t c = refs.size(); c-- > 0;)
    if (refs[c]) {
      end = std::max(end, c + 1);
      break;
    }
  const uint64_t per_block = cs_ * 8 / h_.refcount_bits();
  uint64_t table_clusters = 1, blocks = 1;
  for (;;) {
    uint64_t total = end + table_clusters + blocks;
    uint64_t need_blocks = div_round_up(total, per_block);
    uint64_t need_table = div_round_up(need_blocks * 8, cs_);
    if (need_blocks <= blocks && need_table <= table_clusters) break;
    blocks = std::max(blocks, need_blocks);
    table_clusters = std::max(table_clusters, need_table);
  }
  if (table_clusters * cs_ > kMaxRefcountTableBytes)
    fail(ErrorCategory::unsupported, "{}: rebuilt refcount table would exceed QEMU's limit", f_.path());
  const uint64_t total = end + table_clusters + blocks;
  refs.resize(total, 0);
  for (uint64_t c = end; c < total; ++c) refs[c] = 1;

  std::vector<uint8_t> table(table_clusters * cs_, 0);
  for (uint64_t b = 0; b < blocks; ++b) {
    std::vector<uint8_t> block(cs_, 0);
    for (uint64_t i = 0; i < per_block && b * per_block + i < total; ++i)
      set_refcount_entry(block, i, refs[b * per_block + i]);
    uint64_t at = (end + table_clusters + b) * cs_;
    f_.write_all(at, block);
    store_be64(table.data() + b * 8, at);
  }
  f_.write_all(end * cs_, table);
  f_.sync_data();
  h_.refcount_table_offset = end * cs_;
  h_.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
  write_header();
}

void Checker::apply_fixes(const std::vector<EntryFix>& fixes) {
  for (const EntryFix& fix : fixes) {
    uint8_t raw[8];
    store_be64(raw, fix.value);
    f_.write_all(fix.table_offset + fix.index * 8, raw);
  }
  f_.sync_data();
}

void Checker::mark_clean(bool clear_corrupt) {
  uint64_t flags = h_.incompatible_features & ~kIncompatDirty;
  if (clear_corrupt) flags &= ~kIncompatCorrupt;
  if (flags == h_.incompatible_features) return;
  h_.incompatible_features = flags;
  write_header();
}

void Checker::write_header() {
  f_.write_all(0, encode_header(h_));
  f_.sync_data();
}

CheckResult Checker::analyze() {
  load_header();
  r_.total_clusters = div_round_up(h_.size, cs_);
  refs_.assign(div_round_up(file_size_, cs_), 0);
  count(0, cs_, "header");
  if (h_.l1_size) collect_l1(h_.l1_table_offset, h_.l1_size, true);
  count_snapshots();
  count_l2_tables();
  count_bitmaps();
  count_refcount_structures();
  compare_refcounts();
  check_copied_flags();
  if (suppressed_messages_) r_.messages.push_back(fmt::format("... and {} more problems", suppressed_messages_));
  return r_;
}

}  // namespace

CheckResult check_file(const File& file, RepairMode repair) {
  CheckResult before = Checker(file).analyze();
  if (repair == RepairMode::none) return before;
  if (!file.writable()) fail(ErrorCategory::internal, "{}: repair needs the image opened for writing", file.path());

  // Fix in dependency order, analysing afresh after each step: pointers to outside
  // the file first (they change what is referenced), then the refcounts, then the
  // copied flags (which follow from the refcounts).
  const bool all = repair == RepairMode::all;
  for (int pass = 0; pass < 6; ++pass) {
    Checker c(file);
    CheckResult now = c.analyze();
    if (now.corruptions == 0 && now.leaks == 0) break;
    if (all && c.has_pointer_fixes()) c.apply_pointer_fixes();
    else if (all && c.refcounts_wrong()) c.rebuild_refcounts();
    else if (c.has_leaks()) c.fix_leaks();
    else if (all && c.has_copied_fixes()) c.apply_copied_fixes();
    else break;  // what is left cannot be repaired in this mode
  }
  Checker final_check(file);
  CheckResult after = final_check.analyze();
  if (after.corruptions == 0 && (after.leaks == 0 || all)) final_check.mark_clean(all);
  after.leaks_fixed = before.leaks > after.leaks ? before.leaks - after.leaks : 0;
  after.corruptions_fixed = before.corruptions > after.corruptions ? before.corruptions - after.corruptions : 0;
  after.messages = std::move(before.messages);  // what was found; `after` counts what is left
  return after;
}

}  // namespace arche::image::qcow2
