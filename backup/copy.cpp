#include "backup/copy.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "backup/copy_reencrypt.h"
#include "backup/lock.h"
#include "backup/pack.h"
#include "backup/pipeline.h"
#include "backup/snapshot.h"
#include "backup/used_blobs.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/interrupt.h"

namespace arche::backup {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kCopyPiece = 4u << 20;

// A replica has the source's id and master secret (init_same_key): its packs are
// valid there as they are.
bool is_replica(const Repository& src, const Repository& dst) {
  return src.id() == dst.id() && sodium_memcmp(src.keys().master().data(), dst.keys().master().data(), kKeySize) == 0;
}

// The selected snapshots of `all` (oldest first), each once.
std::vector<Snapshot> select_snapshots(const std::vector<Snapshot>& all, const CopyOptions& options) {
  std::vector<Snapshot> out;
  if (options.snapshots.empty()) {
    out = all;
  } else {
    std::set<std::string> ids;
    for (const std::string& ref : options.snapshots) ids.insert(resolve_snapshot(all, ref).id);
    for (const Snapshot& s : all)
      if (ids.count(s.id)) out.push_back(s);
  }
  if (options.last && out.size() > options.last) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(options.last));
  return out;
}

// Sends one pack object as it is, checking the CRC32C its trailer records over every
// byte before it: a pack damaged in the source store is refused, never copied (the
// destination's writer is dropped uncommitted, so nothing of it becomes visible).
void send_pack(Repository& src, Repository& dst, const PackInfo& pack, SendMeter& meter) {
  const std::string name = pack_relative_path(pack.id);
  const std::string what = src.location() + "/" + name;
  std::unique_ptr<ObjectReader> in = src.open_pack_object(pack.id);
  const uint64_t size = in->size();
  if (size != pack.size)
    fail(ErrorCategory::corrupt, "{}: {} bytes, the index says {} (arche backup check names the damage)", what, size,
         pack.size);
  if (size < kPackTrailerSize) fail(ErrorCategory::corrupt, "{}: truncated pack", what);
  std::vector<uint8_t> buffer(kPackTrailerSize);
  in->read(size - kPackTrailerSize, buffer);
  const PackTrailer trailer = decode_pack_trailer(buffer, size, what);
  std::unique_ptr<ObjectWriter> out = dst.store().create(name, WriteMode::create);
  uint32_t crc = 0;
  const uint64_t body = size - kPackTrailerSize;
  for (uint64_t offset = 0; offset < size;) {
    interrupt::check();
    const uint64_t n = std::min<uint64_t>(kCopyPiece, size - offset);
    buffer.resize(n);
    in->read(offset, buffer);
    if (offset < body) crc = crc32c(crc, buffer.data(), std::min<uint64_t>(n, body - offset));
    if (offset + n == size && trailer.crc != crc)
      fail(ErrorCategory::corrupt, "{}: pack checksum mismatch (damaged in the source store)", what);
    out->append(buffer);
    offset += n;
    meter.sent(n);
  }
  out->commit();
  dst.note_write();
  meter.report();
}

// Sends `packs` the destination lacks, as many at once as the destination store
// takes writers (StoreCapabilities::parallelism); returns when every one is durable.
// Memory: per send one piece (4 MiB) and what the store's writer holds (S3: up to
// three parts). The first failure (or Ctrl-C) stops the others; packs already
// complete stay for the next copy to adopt.
void send_packs(Repository& src, Repository& dst, const std::vector<PackInfo>& packs, SendMeter& meter) {
  const unsigned parallel = static_cast<unsigned>(
      std::clamp<size_t>(dst.store().capabilities().parallelism, 1, std::max<size_t>(packs.size(), 1)));
  Pipeline sends(parallel, parallel);
  for (const PackInfo& p : packs) {
    sends.submit([&src, &dst, &p, &meter] {
      // A pack that is there already (a prune at the destination marked it for
      // deletion, so it was not in the index) is the same object: listed again, not sent.
      if (!dst.store().stat(pack_relative_path(p.id))) send_pack(src, dst, p, meter);
    });
  }
  sends.wait();
}

}  // namespace

void commit_copy(Repository& dst, RepoLock& dst_lock, std::vector<PackInfo> packs, size_t manifests,
                 const std::function<std::string(size_t)>& write_manifest) {
  for (const PackInfo& p : dst.unindexed_packs()) packs.push_back(p);
  dst_lock.ensure_fresh();
  const std::string own_index = packs.empty() ? std::string() : dst.write_index_file(packs);
  std::vector<std::string> written;
  try {
    for (size_t i = 0; i < manifests; ++i) {
      dst_lock.ensure_fresh();
      written.push_back(write_manifest(i));
    }
    std::vector<PackInfo> again = dst.packs_to_index_again(packs, own_index, dst_lock.maintenance_beside());
    if (!again.empty()) dst.write_index_file(again);
  } catch (...) {
    for (const std::string& id : written) dst.remove_file("snapshots", id);
    throw;
  }
}

CopyReport copy_snapshots(Repository& src, Repository& dst, const CopyOptions& options) {
  const auto started = Clock::now();
  const bool replica = is_replica(src, dst);
  RepoLock src_lock(src, LockMode::shared, "backup copy to " + dst.location());
  RepoLock dst_lock(dst, LockMode::shared, "backup copy from " + src.location());
  CopyReport report;

  // A replica's copy of a snapshot has its id (the manifest is copied byte for byte);
  // a re-encrypted copy has another one, and is known by the name, time and host.
  const std::vector<Snapshot> src_snapshots = load_snapshots(src);
  const std::vector<Snapshot> selected = select_snapshots(src_snapshots, options);
  std::vector<DamagedManifest> damaged;
  std::map<std::string, const Snapshot*> dst_names;
  const std::vector<Snapshot> dst_snapshots = load_snapshots(dst, &damaged);
  for (const Snapshot& s : dst_snapshots) dst_names[s.name] = &s;
  auto copy_of = [&](const Snapshot& s) -> const Snapshot* {
    auto it = dst_names.find(s.name);
    return it == dst_names.end() ? nullptr : it->second;
  };
  auto is_copy = [&](const Snapshot& s, const Snapshot& there) {
    return replica ? there.id == s.id : there.time_ns == s.time_ns && there.host == s.host;
  };
  std::vector<const Snapshot*> to_copy;
  for (const Snapshot& s : selected) {
    const Snapshot* there = copy_of(s);
    if (there && !is_copy(s, *there))
      fail(ErrorCategory::exists, "{} holds another snapshot named '{}' ({}): nothing was copied", dst.location(),
           s.name, there->short_id());
    report.snapshots.push_back({s.name, s.id, there ? there->id : std::string(), there != nullptr});
    if (!there) to_copy.push_back(&s);
  }
  if (!replica) {
    // Every source snapshot the destination has a copy of, selected or not: the
    // re-encryption learns from them which destination ids the chunks have.
    std::vector<CopiedPair> copied_before;
    for (const Snapshot& s : src_snapshots)
      if (const Snapshot* there = copy_of(s); there && is_copy(s, *there)) copied_before.push_back({&s, there});
    reencrypt_snapshots(src, dst, to_copy, copied_before, options, dst_lock, report);
    report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return report;
  }

  // Which chunks the snapshots need, which of those the destination lacks, and the
  // source packs that hold them.
  src.load_index(/*adopt_unindexed=*/false);
  dst.load_index(/*adopt_unindexed=*/!options.dry_run);
  UsedBlobs used(src);
  for (const Snapshot* s : to_copy) used.add_snapshot(*s);
  const std::vector<Id> needed = used.take();
  report.needed_blobs = needed.size();
  std::set<Id> pack_ids;
  for (const Id& id : needed) {
    if (dst.index().reference(id)) continue;
    ++report.missing_blobs;
    const std::optional<ChunkIndex::Location> where = src.index().find(id);
    if (!where) src.fail_missing_chunk(id, "backup copy");
    pack_ids.insert(src.index().pack_id(where->pack));
  }
  std::vector<PackInfo> packs;
  for (PackInfo& p : src.read_all_index_files())
    if (pack_ids.erase(p.id)) packs.push_back(std::move(p));
  if (!pack_ids.empty())
    fail(ErrorCategory::corrupt, "{}: the index changed while it was read; run the copy again", src.location());
  report.packs = packs.size();
  for (const PackInfo& p : packs) report.pack_bytes += p.size;
  report.adopted_packs = dst.unindexed_packs().size();
  if (options.dry_run) {
    report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return report;
  }

  SendMeter meter(options, report.pack_bytes);
  send_packs(src, dst, packs, meter);
  commit_copy(dst, dst_lock, packs, to_copy.size(), [&](size_t i) {
    const Snapshot* s = to_copy[i];
    const std::string id = dst.write_content_file("snapshots", src.read_file("snapshots", s->id));
    if (id != s->id) fail(ErrorCategory::corrupt, "{}: snapshot {} changed while it was copied", src.location(), s->name);
    report.set_copy_id(s->id, id);
    return id;
  });
  report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return report;
}

}  // namespace arche::backup
