#include "tape/tape_read.h"

#include <algorithm>
#include <future>
#include <map>

#include <fmt/format.h>

#include "backup/repository.h"
#include "backup/store.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "tape/drive.h"
#include "tape/media.h"
#include "tape/store_writer.h"

namespace arche::tape {

namespace {

// Loads the tape and checks that it is the one the catalog means.
std::unique_ptr<TapeDrive> open_for_reading(Library& library, const CatalogTape& t, const std::string& why) {
  library.load(t.label, why);
  auto drive = std::make_unique<TapeDrive>(library.syscalls(), library.drive_path(), false);
  std::optional<MediaLabel> l = read_label(*drive);
  if (!l || uuid_text(l->tape) != t.uuid)
    fail(ErrorCategory::not_found, "the tape in {} is not tape {} ({}): load the right one", library.device(), t.label,
         t.uuid);
  return drive;
}

ExpectedFile expected(const CatalogTape& t, uint32_t file) {
  return {t.label, t.media_set.empty() ? Uuid{} : parse_uuid(t.media_set, "media set"), t.sequence, file};
}

std::string damage_text(const std::vector<DamagedRecord>& d) {
  std::string out;
  for (const DamagedRecord& r : d) out += (out.empty() ? "" : "; ") + r.text();
  return out;
}

}  // namespace

void read_set_objects(Library& library, const Catalog& catalog, const std::string& set,
                      const std::set<std::string>& names, const ObjectSink& sink, ReadReport& report,
                      Progress* progress, const ObjectPlace* prefer, const ArchiveReader::Buffers& buffers) {
  std::map<std::string, ObjectPlace> places = catalog.objects_of_set(set);
  if (prefer)
    for (const CatalogObject& o : prefer->file->objects) places[o.name] = {prefer->tape, prefer->file, &o};
  // tape sequence -> files
  std::map<uint32_t, std::pair<const CatalogTape*, std::set<uint32_t>>> plan;
  for (const std::string& n : names) {
    auto it = places.find(n);
    if (it == places.end()) fail(ErrorCategory::corrupt, "the catalog puts {} on no tape of media set {}", n, set);
    auto& entry = plan[it->second.tape->sequence];
    entry.first = it->second.tape;
    entry.second.insert(it->second.file->file);
  }
  std::set<std::string> passed;  // each object once
  for (const auto& [sequence, what] : plan) {
    const CatalogTape& t = *what.first;
    std::unique_ptr<TapeDrive> drive = open_for_reading(library, t, "reading media set " + set);
    ++report.tapes;
    for (uint32_t file : what.second) {
      interrupt::check();
      drive->locate_file(file);
      ArchiveReader reader(*drive, expected(t, file));
      reader.set_buffers(buffers);
      reader.read_objects([&](const std::string& n) { return names.count(n) != 0 && !passed.count(n); },
                          [&](const std::string& n, std::vector<uint8_t> bytes) {
                            if (progress) progress->add(bytes.size());
                            passed.insert(n);
                            sink(n, std::move(bytes));
                          });
      report.files_read.push_back(fmt::format("{} file {}", t.label, file));
      report.records += reader.records_read();
      report.bytes += reader.bytes_read();
      for (const DamagedRecord& d : reader.damaged()) {
        warn("{}", d.text());
        report.damaged.push_back(d);
      }
    }
  }
}

TapeRestoreReport restore_snapshot(Library& library, const Catalog& catalog, const std::string& snapshot_ref,
                                   const std::string& target, Progress* progress) {
  const CatalogSnapshot& snap = catalog.resolve_snapshot(snapshot_ref);
  const CatalogSet* set = catalog.find_set(snap.media_set);
  if (!set)
    fail(ErrorCategory::corrupt, "snapshot {} names media set {}, which the catalog lacks", snap.name, snap.media_set);
  const std::map<std::string, ObjectPlace> places = catalog.objects_of_set(set->uuid);
  const std::string manifest = "snapshots/" + snap.id;
  auto m = places.find(manifest);
  if (m == places.end()) fail(ErrorCategory::corrupt, "the catalog puts snapshot {}'s manifest on no tape", snap.name);
  std::set<std::string> names;
  uint64_t total = 0;
  for (const CatalogObject& o : m->second.file->objects) names.insert(o.name);  // config, keys, index, manifest
  for (const std::string& p : snap.packs) names.insert(backup::pack_relative_path(backup::Id::from_hex(p, "pack id")));
  for (const std::string& n : names)
    if (auto it = places.find(n); it != places.end()) total += it->second.object->size;
  if (progress) progress->set_total(total);

  // The target: a new store, the same repository (objects it has are kept), or
  // what an interrupted restore left (packs, no config). Making a new local store
  // (its directories, each synced) runs while the tape is read.
  std::shared_ptr<backup::Store> existing = backup::open_store(target);
  std::shared_future<std::shared_ptr<backup::Store>> made;
  if (existing->stat("config")) {
    const backup::RepoConfigHeader h = backup::Repository::read_header(*existing);
    if (h.repo_id.hex() != set->repository)
      fail(ErrorCategory::exists, "{} holds another repository ({}), not {}", target, h.repo_id.short_hex(),
           set->repository.substr(0, 8));
    std::promise<std::shared_ptr<backup::Store>> ready;
    ready.set_value(existing);
    made = ready.get_future().share();
  } else {
    made = std::async(std::launch::async, [target, existing]() -> std::shared_ptr<backup::Store> {
             try {
               return backup::create_store(target);
             } catch (const Error& e) {
               if (e.category() != ErrorCategory::exists || !existing->list("keys/").empty() ||
                   existing->list("data/").empty())
                 throw;
               return existing;
             }
           }).share();
  }

  TapeRestoreReport report;
  report.snapshot_id = snap.id;
  report.snapshot_name = snap.name;
  report.target = existing->location();
  std::map<std::string, std::vector<uint8_t>> held;  // written after the packs
  std::set<std::string> got;
  {
    ParallelStoreWriter packs(made, std::clamp(existing->capabilities().parallelism * 2, 4u, 16u), 2);
    read_set_objects(
        library, catalog, set->uuid, names,
        [&](const std::string& name, std::vector<uint8_t> bytes) {
          got.insert(name);
          if (name.rfind("data/", 0) == 0) packs.write(name, std::move(bytes));
          else held[name] = std::move(bytes);
        },
        report.read, progress, &m->second, [&] { return packs.spare_buffer(); });
    packs.finish();
    report.objects_written = packs.written();
    report.objects_present = packs.present();
  }
  std::vector<std::string> missing;
  for (const std::string& n : names)
    if (!got.count(n)) missing.push_back(n);
  if (!missing.empty())
    fail(ErrorCategory::corrupt,
         "snapshot {}: {} object(s) could not be read whole from tape ({}{}); nothing of the snapshot's manifest was "
         "written{}{}",
         snap.name, missing.size(), missing.front(), missing.size() > 1 ? ", ..." : "",
         report.read.damaged.empty() ? "" : ": ", damage_text(report.read.damaged));
  backup::Store& store = *made.get();
  auto put = [&](const std::string& name, std::span<const uint8_t> bytes) {
    if (store.stat(name)) {
      ++report.objects_present;
      return;
    }
    try {
      store.write(name, bytes, backup::WriteMode::create);
      ++report.objects_written;
    } catch (const Error& e) {
      if (e.category() != ErrorCategory::exists) throw;
      ++report.objects_present;
    }
  };
  for (const auto& [name, bytes] : held)
    if (name.rfind("keys/", 0) == 0 || name.rfind("index/", 0) == 0) put(name, bytes);
  put(manifest, held.at(manifest));
  put("config", held.at("config"));
  return report;
}

VerifyReport verify_tapes(Library& library, const Catalog& catalog, Progress* progress) {
  VerifyReport report;
  std::vector<std::string> names = library.cartridges();
  if (names.empty()) names.push_back("");
  for (const std::string& name : names) {
    library.load(name, "verify");
    TapeDrive drive(library.syscalls(), library.drive_path(), false);
    std::optional<MediaLabel> l = read_label(drive);
    if (!l) continue;
    report.tapes.push_back(l->label);
    const CatalogTape* t = catalog.find_tape(uuid_text(l->tape));
    CatalogTape from_label{uuid_text(l->tape),
                           l->label,
                           l->pool,
                           is_nil(l->media_set) ? "" : uuid_text(l->media_set),
                           l->sequence,
                           l->key_fingerprint,
                           l->labeled,
                           l->record_size,
                           false,
                           {}};
    std::set<std::string> found;
    for (uint32_t file = 2;; ++file) {
      interrupt::check();
      ArchiveReader reader(drive, expected(t ? *t : from_label, file));
      if (reader.end_of_data()) break;
      reader.read_objects([](const std::string&) { return true; },
                          [&](const std::string& n, std::vector<uint8_t> bytes) {
                            ++report.objects;
                            if (progress) progress->add(bytes.size());
                            found.insert(fmt::format("{}:{}", file, n));
                          });
      ++report.files;
      report.records += reader.records_read();
      report.bytes += reader.bytes_read();
      for (const DamagedRecord& d : reader.damaged()) report.damaged.push_back(d);
    }
    if (t)
      for (const CatalogFile& f : t->files)
        for (const CatalogObject& o : f.objects)
          if (!found.count(fmt::format("{}:{}", f.file, o.name)))
            report.missing.push_back(fmt::format("{} file {}: {}", t->label, f.file, o.name));
  }
  return report;
}

Catalog rebuild_catalog(Library& library, std::vector<std::string>* notes) {
  std::map<std::string, Catalog> newest;  // set -> its newest catalog archive's content
  std::map<std::string, uint64_t> generation;
  std::vector<CatalogTape> labels;
  std::vector<std::string> names = library.cartridges();
  if (names.empty()) names.push_back("");
  for (const std::string& name : names) {
    library.load(name, "catalog rebuild");
    TapeDrive drive(library.syscalls(), library.drive_path(), false);
    std::optional<MediaLabel> l = read_label(drive);
    if (!l) {
      if (notes) notes->push_back((name.empty() ? library.device() : name) + ": blank");
      continue;
    }
    CatalogTape t{uuid_text(l->tape),
                  l->label,
                  l->pool,
                  is_nil(l->media_set) ? "" : uuid_text(l->media_set),
                  l->sequence,
                  l->key_fingerprint,
                  l->labeled,
                  l->record_size,
                  false,
                  {}};
    labels.push_back(t);
    if (t.media_set.empty()) continue;
    // File headers only: the catalog archives are read, everything else is skipped.
    for (uint32_t file = 2;; ++file) {
      interrupt::check();
      ArchiveReader reader(drive, expected(t, file));
      if (reader.end_of_data()) break;
      if (!reader.header()) {
        for (const DamagedRecord& d : reader.damaged()) warn("{}", d.text());
        drive.locate_file(file + 1);
        continue;
      }
      if (reader.header()->type != ContentType::catalog_archive) {
        drive.skip_files_forward(1);
        continue;
      }
      std::optional<Catalog> part;
      reader.read_objects([](const std::string& n) { return n == "catalog"; },
                          [&](const std::string&, std::vector<uint8_t> bytes) {
                            part = decode_catalog(bytes, fmt::format("tape {} file {}: catalog", t.label, file));
                          });
      if (!part) {
        for (const DamagedRecord& d : reader.damaged()) warn("{}", d.text());
        continue;
      }
      for (const CatalogSet& s : part->sets) {
        if (!newest.count(s.uuid) || s.generation > generation[s.uuid]) {
          generation[s.uuid] = s.generation;
          newest[s.uuid] = part->subset(s.uuid);
        }
      }
    }
  }
  Catalog out;
  for (const auto& [set, part] : newest) out.merge(part);
  for (const CatalogTape& t : labels) {
    CatalogTape* known = out.find_tape(t.uuid);
    if (!known) out.tapes.push_back(t);
    else if (known->media_set != t.media_set) *known = t;  // the tape was reused since that catalog was written
  }
  out.sort();
  return out;
}

}  // namespace arche::tape
