#include "backup/copy_reencrypt.h"

#include <algorithm>
#include <thread>
#include <unordered_map>

#include "backup/chunk_list.h"
#include "backup/chunk_store.h"
#include "backup/pipeline.h"
#include "backup/tree_store.h"
#include "backup/used_blobs.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/thread_pool.h"

namespace arche::backup {

void SendMeter::sent(uint64_t n) {
  uint64_t so_far;
  {
    std::lock_guard lock(mutex_);
    so_far = sent_ += n;
  }
  if (!options_.bwlimit) return;
  std::this_thread::sleep_until(start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                             static_cast<double>(so_far) / static_cast<double>(options_.bwlimit))));
}

void SendMeter::report(int64_t done) {
  if (!options_.progress) return;
  std::lock_guard lock(mutex_);
  options_.progress(done < 0 ? sent_ : static_cast<uint64_t>(done), total_);
}

namespace {

// Rewrites snapshots of `src` for the destination behind `store`: every chunk read,
// authenticated and stored again (the store dedups and encrypts with the
// destination's key), every tree and chunk list encoded again with the new ids.
// Chunks are read and stored on the pipeline's threads; trees and lists on the
// calling thread, which walks the snapshot.
class Reencoder {
 public:
  Reencoder(Repository& src, ChunkStore& store, Pipeline& pipeline, SendMeter& meter)
      : src_(src), dst_(store.repository()), store_(store), pipeline_(pipeline), meter_(meter) {}

  // Pairs the ids of `source` with those of its copy `copy` (a snapshot of the
  // destination) by walking both side by side; false, and nothing learned, when
  // their shapes differ or the destination's index lacks one of the copy's blobs.
  bool learn(const Snapshot& source, const Snapshot& copy) {
    Learned l;
    if (source.images.size() != copy.images.size() || source.tree.empty() != copy.tree.empty()) return false;
    for (size_t i = 0; i < source.images.size(); ++i) {
      const ImageRecord &a = source.images[i], &b = copy.images[i];
      if (a.name != b.name || a.size != b.size || a.chunk_size != b.chunk_size || a.lists.size() != b.lists.size())
        return false;
      for (size_t k = 0; k < a.lists.size(); ++k) {
        const std::string what = fmt::format("snapshot {}: image {}: chunk list {}", source.name, a.name, k);
        const std::vector<Id> x = decode_image_list(src_.read_blob(a.lists[k], what), what);
        const std::vector<Id> y = decode_image_list(dst_.read_blob(b.lists[k], what), what);
        if (x.size() != y.size()) return false;
        for (size_t j = 0; j < x.size(); ++j) {
          if (x[j].is_zero() != y[j].is_zero()) return false;
          if (!x[j].is_zero()) l.chunks.emplace_back(x[j], y[j]);
        }
        l.lists.emplace_back(a.lists[k], b.lists[k]);
      }
    }
    if (!source.tree.empty() && !learn_tree(source, source.tree, copy.tree, "", l)) return false;
    // The copy's blobs must be there for a new snapshot to name them (and are
    // referenced: a prune beside this copy keeps their packs).
    for (const auto& [from, to] : l.chunks)
      if (!dst_.index().reference(to)) return false;
    for (const auto& [from, to] : l.lists)
      if (!dst_.index().reference(to)) return false;
    for (const auto& [from, to] : l.trees)
      for (const Id& id : to)
        if (!dst_.index().reference(id)) return false;
    for (const Id& id : l.file_lists)
      if (!dst_.index().reference(id)) return false;
    std::lock_guard lock(mutex_);
    for (const auto& [from, to] : l.chunks) known_ += copied_.emplace(from, to).second;
    lists_.insert(l.lists.begin(), l.lists.end());
    trees_.insert(l.trees.begin(), l.trees.end());
    return true;
  }

  void image(const Snapshot& s, ImageRecord& image) {
    for (size_t b = 0; b < image.lists.size(); ++b) {
      const std::string what = fmt::format("snapshot {}: image {}: chunk list {}", s.name, image.name, b);
      Id& list = image.lists[b];
      if (auto it = lists_.find(list); it != lists_.end()) {
        list = it->second;
        continue;
      }
      const std::vector<Id> ids = chunks(decode_image_list(src_.read_blob(list, what), what), what);
      const Id copied = store_.store(BlobKind::list, encode_image_list(ids));
      lists_.emplace(list, copied);
      list = copied;
    }
  }

  // The pieces of the directory's tree in the destination.
  std::vector<Id> tree(const Snapshot& s, const std::vector<Id>& pieces, const std::string& path) {
    interrupt::check();
    if (auto it = trees_.find(pieces); it != trees_.end()) return it->second;
    const std::string what = fmt::format("snapshot {}: directory {}", s.name, path.empty() ? "/" : path);
    Tree tree = load_tree(src_, pieces, what);
    // The chunks of all files of the directory in one batch: small files keep the
    // pipeline as busy as large ones.
    std::vector<std::vector<ChunkRef>> files;
    std::vector<Id> ids;
    for (const Node& n : tree.nodes) {
      if (n.type != NodeType::file) continue;
      files.push_back(load_file_chunks(src_, n, "snapshot " + s.name + ": file " + path + "/" + n.name));
      for (const ChunkRef& c : files.back()) ids.push_back(c.id);
    }
    const std::vector<Id> copied = chunks(ids, what);
    size_t file = 0, next = 0;
    for (Node& n : tree.nodes) {
      if (n.type == NodeType::dir) {
        n.subtree = this->tree(s, n.subtree, path + "/" + n.name);
      } else if (n.type == NodeType::file) {
        std::vector<ChunkRef>& refs = files[file++];
        for (ChunkRef& c : refs) c.id = copied[next++];
        set_file_chunks(store_, n, std::move(refs));
      }
    }
    std::vector<Id> out = store_tree(store_, tree);
    trees_.emplace(pieces, out);
    return out;
  }

 private:
  // The destination ids of source data chunks (an all-zero id, a hole, stays one):
  // those not met before are read and stored on the pipeline, each once.
  std::vector<Id> chunks(const std::vector<Id>& ids, const std::string& what) {
    std::vector<Id> out(ids.size());
    std::vector<size_t> later;  // the same chunk twice in this batch: filled after the first
    std::vector<size_t> fetch;
    {
      std::unordered_map<Id, size_t, IdHash> fetching;
      std::lock_guard lock(mutex_);
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i].is_zero()) continue;
        if (auto it = copied_.find(ids[i]); it != copied_.end()) out[i] = it->second;
        else if (fetching.emplace(ids[i], i).second) fetch.push_back(i);
        else later.push_back(i);
      }
    }
    try {
      for (size_t i : fetch)
        pipeline_.submit([this, &ids, &out, &what, i] {
          thread_local std::vector<uint8_t> frame, scratch;
          std::span<const uint8_t> plain = src_.read_blob(ids[i], frame, scratch, what);
          ++read_blobs_;
          const uint64_t before = store_.stats().stored_bytes;
          out[i] = store_.store(BlobKind::data, plain);
          {
            std::lock_guard lock(mutex_);
            copied_.emplace(ids[i], out[i]);
          }
          // What this store added (others store beside it: the total is what counts).
          meter_.sent(std::max<uint64_t>(store_.stats().stored_bytes, before) - before);
          meter_.report(read_ += frame.size());
        });
      pipeline_.wait();
    } catch (...) {
      pipeline_.drain();  // no job may outlive `out`
      throw;
    }
    std::lock_guard lock(mutex_);
    for (size_t i : later) out[i] = copied_.at(ids[i]);
    return out;
  }

  // What learn() gathers before it knows the pair is a copy.
  struct Learned {
    std::vector<std::pair<Id, Id>> chunks, lists;
    std::vector<std::pair<std::vector<Id>, std::vector<Id>>> trees;
    std::vector<Id> file_lists;  // the copy's file chunk lists (the trees name them)
  };

  bool learn_tree(const Snapshot& s, const std::vector<Id>& a_pieces, const std::vector<Id>& b_pieces,
                  const std::string& path, Learned& l) {
    interrupt::check();
    if (trees_.count(a_pieces)) return true;
    const std::string what = fmt::format("snapshot {}: directory {}", s.name, path.empty() ? "/" : path);
    const Tree a = load_tree(src_, a_pieces, what), b = load_tree(dst_, b_pieces, what);
    if (a.nodes.size() != b.nodes.size()) return false;
    for (size_t i = 0; i < a.nodes.size(); ++i) {
      const Node &x = a.nodes[i], &y = b.nodes[i];
      if (x.name != y.name || x.type != y.type || x.size != y.size) return false;
      if (x.type == NodeType::dir) {
        if (!learn_tree(s, x.subtree, y.subtree, path + "/" + x.name, l)) return false;
      } else if (x.type == NodeType::file) {
        const std::string file = "snapshot " + s.name + ": file " + path + "/" + x.name;
        const std::vector<ChunkRef> cx = load_file_chunks(src_, x, file), cy = load_file_chunks(dst_, y, file);
        if (cx.size() != cy.size()) return false;
        for (size_t j = 0; j < cx.size(); ++j) {
          if (cx[j].length != cy[j].length || cx[j].is_hole() != cy[j].is_hole()) return false;
          if (!cx[j].is_hole()) l.chunks.emplace_back(cx[j].id, cy[j].id);
        }
        l.file_lists.insert(l.file_lists.end(), y.chunk_lists.begin(), y.chunk_lists.end());
      }
    }
    l.trees.emplace_back(a_pieces, b_pieces);
    return true;
  }

 public:
  uint64_t read_blobs() const { return read_blobs_; }
  uint64_t read_bytes() const { return read_; }
  uint64_t known_blobs() const { return known_; }

 private:
  Repository& src_;
  Repository& dst_;
  ChunkStore& store_;
  Pipeline& pipeline_;
  SendMeter& meter_;
  std::mutex mutex_;
  std::unordered_map<Id, Id, IdHash> copied_;         // source chunk id -> destination id (mutex_)
  std::atomic<uint64_t> read_{0};                     // bytes of source frames read
  std::atomic<uint64_t> read_blobs_{0};               // and how many
  uint64_t known_ = 0;                                // chunk ids learned from earlier copies
  std::unordered_map<Id, Id, IdHash> lists_;          // image chunk lists: source -> destination
  std::map<std::vector<Id>, std::vector<Id>> trees_;  // directories: source pieces -> destination pieces
};

// "<snapshot id> <image> depth <n>" with the id of the base's copy, or empty when the
// base was not copied.
std::string copied_base(const std::string& incremental_from, const std::map<std::string, std::string>& copies) {
  const size_t space = incremental_from.find(' ');
  auto it = copies.find(incremental_from.substr(0, space));
  if (it == copies.end() || space == std::string::npos) return {};
  return it->second + incremental_from.substr(space);
}

// The copies to learn chunk ids from (Reencoder::learn), each once: those of the
// parents and incremental bases of the snapshots to copy, else of the newest earlier
// snapshot of the same host.
std::vector<const CopiedPair*> teachers(const std::vector<const Snapshot*>& to_copy,
                                        const std::vector<CopiedPair>& copied_before) {
  std::vector<const CopiedPair*> out;
  auto add = [&](const CopiedPair* p) {
    if (p && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  auto by_id = [&](const std::string& id) -> const CopiedPair* {
    for (const CopiedPair& p : copied_before)
      if (!id.empty() && p.source->id == id) return &p;
    return nullptr;
  };
  for (const Snapshot* s : to_copy) {
    std::vector<const CopiedPair*> mine{by_id(s->parent)};
    for (const ImageRecord& image : s->images)
      mine.push_back(by_id(image.incremental_from.substr(0, image.incremental_from.find(' '))));
    mine.erase(std::remove(mine.begin(), mine.end(), nullptr), mine.end());
    if (mine.empty()) {
      const CopiedPair* newest = nullptr;
      for (const CopiedPair& p : copied_before)
        if (p.source->host == s->host && p.source->time_ns <= s->time_ns &&
            (!newest || p.source->time_ns >= newest->source->time_ns))
          newest = &p;
      mine.push_back(newest);
    }
    for (const CopiedPair* p : mine) add(p);
  }
  return out;
}

}  // namespace

void reencrypt_snapshots(Repository& src, Repository& dst, const std::vector<const Snapshot*>& to_copy,
                         const std::vector<CopiedPair>& copied_before, const CopyOptions& options, RepoLock& dst_lock,
                         CopyReport& report) {
  report.reencrypted = true;
  std::map<std::string, std::string> copies;  // source snapshot id -> its copy's id
  for (const CopiedPair& p : copied_before) copies[p.source->id] = p.copy->id;
  src.load_index(/*adopt_unindexed=*/false);
  dst.load_index(/*adopt_unindexed=*/!options.dry_run);
  report.adopted_packs = dst.unindexed_packs().size();

  // What the snapshots need in the source: the total of the progress.
  UsedBlobs used(src);
  for (const Snapshot* s : to_copy) used.add_snapshot(*s);
  const std::vector<Id> needed = used.take();
  report.needed_blobs = needed.size();
  uint64_t total = 0;
  for (const Id& id : needed) {
    const std::optional<ChunkIndex::Location> where = src.index().find(id);
    if (!where) src.fail_missing_chunk(id, "backup copy");
    total += where->length;
  }

  SendMeter meter(options, total);
  ChunkStore store(dst, dst.settings().compression_level, options.dry_run);
  std::vector<Snapshot> copied;
  uint64_t read_blobs = 0, read_bytes = 0, known_blobs = 0;
  try {
    // One worker per core, or as many as the source store takes requests at once
    // when that is more: each chunk is one read there (a round trip on SFTP or S3).
    const unsigned threads =
        std::max(ThreadPool::default_threads(), std::min(src.store().capabilities().parallelism, 16u));
    Pipeline pipeline(threads, 2 * threads + 2);
    Reencoder reencode(src, store, pipeline, meter);
    for (const CopiedPair* pair : teachers(to_copy, copied_before)) {
      try {
        reencode.learn(*pair->source, *pair->copy);
      } catch (const Error& e) {
        // A copy that cannot be read teaches nothing; the chunks are read instead.
        if (e.category() == ErrorCategory::interrupted) throw;
        warn("{}: not learning chunk ids from snapshot {}: {}", dst.location(), pair->copy->short_id(), e.what());
      }
    }
    for (const Snapshot* s : to_copy) {
      Snapshot c = *s;
      c.id.clear();
      for (ImageRecord& image : c.images) reencode.image(*s, image);
      if (!c.tree.empty()) c.tree = reencode.tree(*s, c.tree, "");
      copied.push_back(std::move(c));
    }
    read_blobs = reencode.read_blobs();
    read_bytes = reencode.read_bytes();
    known_blobs = reencode.known_blobs();
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    const std::vector<PackInfo> kept = store.abandon();
    fail(ErrorCategory::interrupted, "{}: no snapshot was copied; {} is as it was{}", e.what(), dst.location(),
         kept.empty() ? std::string()
                      : fmt::format(" apart from {} complete pack{} that the next copy reuses", kept.size(),
                                    kept.size() == 1 ? "" : "s"));
  }
  report.missing_blobs = store.stats().new_blobs;
  report.read_blobs = read_blobs;
  report.read_bytes = read_bytes;
  report.known_blobs = known_blobs;
  report.missing_bytes = store.stats().new_bytes;
  if (options.dry_run) return;

  const std::vector<PackInfo> packs = store.finish();
  report.packs = packs.size();
  for (const PackInfo& p : packs) report.pack_bytes += p.size;
  commit_copy(dst, dst_lock, packs, to_copy.size(), [&](size_t i) {
    Snapshot& c = copied[i];
    auto parent = copies.find(c.parent);
    c.parent = parent == copies.end() ? std::string() : parent->second;
    for (ImageRecord& image : c.images) image.incremental_from = copied_base(image.incremental_from, copies);
    write_snapshot(dst, c);
    copies[to_copy[i]->id] = c.id;
    report.set_copy_id(to_copy[i]->id, c.id);
    return c.id;
  });
  meter.report(static_cast<int64_t>(total));
}

}  // namespace arche::backup
