#include "tape/catalog.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/bytes.h"
#include "core/error.h"
#include "core/file.h"

namespace arche::tape {

namespace {

constexpr char kCatalogMagic[] = "ARCHTCAT";
constexpr RecordVersion kCatalogVersion{1, 0};

template <typename T>
T get(const Json& j, const char* key, const std::string& what) {
  if (!j.is_object() || !j.contains(key)) fail(ErrorCategory::corrupt, "{}: '{}' is missing", what, key);
  try {
    return j.at(key).get<T>();
  } catch (const std::exception&) {
    fail(ErrorCategory::corrupt, "{}: '{}' has the wrong type", what, key);
  }
}

}  // namespace

CatalogTape* Catalog::find_tape_by_label(const std::string& label) {
  for (CatalogTape& t : tapes)
    if (t.label == label) return &t;
  return nullptr;
}
CatalogTape* Catalog::find_tape(const std::string& uuid) {
  for (CatalogTape& t : tapes)
    if (t.uuid == uuid) return &t;
  return nullptr;
}
const CatalogTape* Catalog::find_tape(const std::string& uuid) const {
  return const_cast<Catalog*>(this)->find_tape(uuid);
}
CatalogSet* Catalog::find_set(const std::string& uuid) {
  for (CatalogSet& s : sets)
    if (s.uuid == uuid) return &s;
  return nullptr;
}
const CatalogSet* Catalog::find_set(const std::string& uuid) const {
  return const_cast<Catalog*>(this)->find_set(uuid);
}

const CatalogSnapshot& Catalog::resolve_snapshot(const std::string& ref) const {
  const CatalogSnapshot* best = nullptr;
  for (const CatalogSnapshot& s : snapshots)
    if (s.name == ref && (!best || s.time_ns >= best->time_ns)) best = &s;
  if (best) return *best;
  if (ref.size() >= 4) {
    for (const CatalogSnapshot& s : snapshots) {
      if (s.id.rfind(ref, 0) != 0) continue;
      if (best && best->id != s.id) fail(ErrorCategory::usage, "snapshot id prefix {} is ambiguous", ref);
      best = &s;
    }
  }
  if (!best)
    fail(ErrorCategory::not_found, "no snapshot '{}' on tape (arche tape list shows what the catalog knows)", ref);
  return *best;
}

std::map<std::string, ObjectPlace> Catalog::objects_of_set(const std::string& set) const {
  std::map<std::string, ObjectPlace> out;
  const CatalogSet* s = find_set(set);
  if (!s) return out;
  for (const std::string& uuid : s->tapes) {
    const CatalogTape* t = find_tape(uuid);
    if (!t || t->media_set != set) continue;
    for (const CatalogFile& f : t->files)
      for (const CatalogObject& o : f.objects) out.emplace(o.name, ObjectPlace{t, &f, &o});
  }
  return out;
}

Catalog Catalog::subset(const std::string& set) const {
  Catalog c;
  for (const CatalogTape& t : tapes)
    if (t.media_set == set) c.tapes.push_back(t);
  for (const CatalogSet& s : sets)
    if (s.uuid == set) c.sets.push_back(s);
  for (const CatalogSnapshot& s : snapshots)
    if (s.media_set == set) c.snapshots.push_back(s);
  c.sort();
  return c;
}

void Catalog::merge(const Catalog& part) {
  for (const CatalogSet& s : part.sets) {
    std::erase_if(sets, [&](const CatalogSet& x) { return x.uuid == s.uuid; });
    std::erase_if(snapshots, [&](const CatalogSnapshot& x) { return x.media_set == s.uuid; });
    sets.push_back(s);
  }
  for (const CatalogTape& t : part.tapes) {
    std::erase_if(tapes, [&](const CatalogTape& x) { return x.uuid == t.uuid; });
    tapes.push_back(t);
  }
  for (const CatalogSnapshot& s : part.snapshots) snapshots.push_back(s);
  sort();
}

void Catalog::sort() {
  std::sort(tapes.begin(), tapes.end(), [](const CatalogTape& a, const CatalogTape& b) {
    return std::tie(a.label, a.uuid) < std::tie(b.label, b.uuid);
  });
  std::sort(sets.begin(), sets.end(), [](const CatalogSet& a, const CatalogSet& b) {
    return std::tie(a.created, a.uuid) < std::tie(b.created, b.uuid);
  });
  std::stable_sort(snapshots.begin(), snapshots.end(), [](const CatalogSnapshot& a, const CatalogSnapshot& b) {
    return std::tie(a.media_set, a.time_ns, a.id) < std::tie(b.media_set, b.time_ns, b.id);
  });
}

Json catalog_to_json(const Catalog& c) {
  Json j = Json::object();
  j["tapes"] = Json::array();
  for (const CatalogTape& t : c.tapes) {
    Json files = Json::array();
    for (const CatalogFile& f : t.files) {
      Json objects = Json::array();
      for (const CatalogObject& o : f.objects)
        objects.push_back({{"name", o.name}, {"size", o.size}, {"record", o.record}, {"offset", o.offset}});
      files.push_back({{"file", f.file},
                       {"kind", f.kind},
                       {"archive", f.archive},
                       {"part", f.part},
                       {"records", f.records},
                       {"objects", objects}});
    }
    j["tapes"].push_back({{"uuid", t.uuid},
                          {"label", t.label},
                          {"pool", t.pool},
                          {"media-set", t.media_set},
                          {"sequence", t.sequence},
                          {"key-fingerprint", t.key_fingerprint},
                          {"labeled", t.labeled},
                          {"record-size", t.record_size},
                          {"full", t.full},
                          {"files", files}});
  }
  j["sets"] = Json::array();
  for (const CatalogSet& s : c.sets)
    j["sets"].push_back({{"uuid", s.uuid},
                         {"pool", s.pool},
                         {"repository", s.repository},
                         {"key-fingerprint", s.key_fingerprint},
                         {"created", s.created},
                         {"last-written", s.last_written},
                         {"retention-days", s.retention_days},
                         {"generation", s.generation},
                         {"tapes", s.tapes}});
  j["snapshots"] = Json::array();
  for (const CatalogSnapshot& s : c.snapshots)
    j["snapshots"].push_back({{"id", s.id},
                              {"name", s.name},
                              {"media-set", s.media_set},
                              {"host", s.host},
                              {"time-ns", s.time_ns},
                              {"paths", s.paths},
                              {"images", s.images},
                              {"packs", s.packs},
                              {"metadata-packs", s.metadata_packs}});
  return j;
}

Catalog catalog_from_json(const Json& j, const std::string& what) {
  Catalog c;
  for (const Json& t : get<Json>(j, "tapes", what)) {
    CatalogTape x;
    x.uuid = get<std::string>(t, "uuid", what);
    x.label = get<std::string>(t, "label", what);
    x.pool = get<std::string>(t, "pool", what);
    x.media_set = get<std::string>(t, "media-set", what);
    x.sequence = get<uint32_t>(t, "sequence", what);
    x.key_fingerprint = get<std::string>(t, "key-fingerprint", what);
    x.labeled = get<int64_t>(t, "labeled", what);
    x.record_size = get<uint32_t>(t, "record-size", what);
    x.full = get<bool>(t, "full", what);
    for (const Json& f : get<Json>(t, "files", what)) {
      CatalogFile y;
      y.file = get<uint32_t>(f, "file", what);
      y.kind = get<std::string>(f, "kind", what);
      y.archive = get<std::string>(f, "archive", what);
      y.part = get<uint32_t>(f, "part", what);
      y.records = get<uint64_t>(f, "records", what);
      for (const Json& o : get<Json>(f, "objects", what))
        y.objects.push_back({get<std::string>(o, "name", what), get<uint64_t>(o, "size", what),
                             get<uint64_t>(o, "record", what), get<uint32_t>(o, "offset", what)});
      x.files.push_back(std::move(y));
    }
    c.tapes.push_back(std::move(x));
  }
  for (const Json& s : get<Json>(j, "sets", what)) {
    CatalogSet x;
    x.uuid = get<std::string>(s, "uuid", what);
    x.pool = get<std::string>(s, "pool", what);
    x.repository = get<std::string>(s, "repository", what);
    x.key_fingerprint = get<std::string>(s, "key-fingerprint", what);
    x.created = get<int64_t>(s, "created", what);
    x.last_written = get<int64_t>(s, "last-written", what);
    x.retention_days = get<uint32_t>(s, "retention-days", what);
    x.generation = get<uint64_t>(s, "generation", what);
    x.tapes = get<std::vector<std::string>>(s, "tapes", what);
    c.sets.push_back(std::move(x));
  }
  for (const Json& s : get<Json>(j, "snapshots", what)) {
    CatalogSnapshot x;
    x.id = get<std::string>(s, "id", what);
    x.name = get<std::string>(s, "name", what);
    x.media_set = get<std::string>(s, "media-set", what);
    x.host = get<std::string>(s, "host", what);
    x.time_ns = get<int64_t>(s, "time-ns", what);
    x.paths = get<std::vector<std::string>>(s, "paths", what);
    x.images = get<std::vector<std::string>>(s, "images", what);
    x.packs = get<std::vector<std::string>>(s, "packs", what);
    x.metadata_packs = get<std::vector<std::string>>(s, "metadata-packs", what);
    c.snapshots.push_back(std::move(x));
  }
  return c;
}

std::vector<uint8_t> encode_catalog(const Catalog& c) {
  const std::string text = catalog_to_json(c).dump();
  return seal_record(kCatalogMagic, kCatalogVersion,
                     std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Catalog decode_catalog(std::span<const uint8_t> data, const std::string& what) {
  OpenedRecord r = open_record(data, kCatalogMagic, kCatalogVersion.major, what);
  Json j;
  try {
    j = Json::parse(r.payload.begin(), r.payload.end());
  } catch (const std::exception&) {
    fail(ErrorCategory::corrupt, "{}: not JSON", what);
  }
  return catalog_from_json(j, what);
}

std::string default_catalog_dir() {
  if (const char* d = std::getenv("ARCHE_TAPE_CATALOG"); d && *d) return d;
  if (const char* d = std::getenv("XDG_STATE_HOME"); d && *d) return std::string(d) + "/arche/tape";
  const char* home = std::getenv("HOME");
  if (!home || !*home) fail(ErrorCategory::usage, "no catalog directory: set --catalog, $ARCHE_TAPE_CATALOG or $HOME");
  return std::string(home) + "/.local/state/arche/tape";
}

CatalogFileStore::CatalogFileStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) fail(ErrorCategory::io, "catalog directory {}: {}", dir_, ec.message());
  ::chmod(dir_.c_str(), 0700);
  lock_fd_ = ::open((dir_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) fail(ErrorCategory::io, "{}/lock: {}", dir_, std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    fail(ErrorCategory::busy, "the tape catalog {} is in use by another arche tape command", dir_);
  }
}

CatalogFileStore::~CatalogFileStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Catalog CatalogFileStore::load() const {
  const std::string path = dir_ + "/catalog";
  if (::access(path.c_str(), F_OK) != 0) return {};
  File f = File::open(path, OpenMode::read_only);
  std::vector<uint8_t> bytes(f.size());
  f.read_exact(0, bytes);
  return decode_catalog(bytes, "tape catalog " + path);
}

void CatalogFileStore::save(const Catalog& c) const { write_file_atomic(dir_ + "/catalog", encode_catalog(c)); }

}  // namespace arche::tape
