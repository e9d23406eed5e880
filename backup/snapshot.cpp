#include "backup/snapshot.h"

#include <algorithm>
#include <ctime>

#include "backup/chunk_list.h"
#include "backup/object.h"
#include "core/error.h"

namespace arche::backup {

namespace {

constexpr std::string_view kSnapshotMagic = "ARCHESNP";
constexpr RecordVersion kSnapshotVersion{1, 0};
constexpr size_t kMaxSnapshotPayload = 256u << 20;

Json ids_to_json(const std::vector<Id>& ids) {
  Json a = Json::array();
  for (const Id& id : ids) a.push_back(id.hex());
  return a;
}

// Typed access that turns a missing or mistyped field into one corrupt error.
struct Reader {
  const Json& j;
  const std::string& what;

  const Json& at(const char* key) const {
    if (!j.is_object() || !j.contains(key)) fail(ErrorCategory::corrupt, "{}: field '{}' missing", what, key);
    return j.at(key);
  }
  std::string str(const char* key) const {
    const Json& v = at(key);
    if (!v.is_string()) fail(ErrorCategory::corrupt, "{}: field '{}' is not a string", what, key);
    return v.get<std::string>();
  }
  uint64_t u64(const char* key) const {
    const Json& v = at(key);
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
      fail(ErrorCategory::corrupt, "{}: field '{}' is not a count", what, key);
    return v.get<uint64_t>();
  }
  int64_t i64(const char* key) const {
    const Json& v = at(key);
    if (!v.is_number_integer()) fail(ErrorCategory::corrupt, "{}: field '{}' is not an integer", what, key);
    return v.get<int64_t>();
  }
  double real(const char* key) const {
    const Json& v = at(key);
    if (!v.is_number()) fail(ErrorCategory::corrupt, "{}: field '{}' is not a number", what, key);
    return v.get<double>();
  }
  bool boolean(const char* key) const {
    const Json& v = at(key);
    if (!v.is_boolean()) fail(ErrorCategory::corrupt, "{}: field '{}' is not a boolean", what, key);
    return v.get<bool>();
  }
  const Json& array(const char* key) const {
    const Json& v = at(key);
    if (!v.is_array()) fail(ErrorCategory::corrupt, "{}: field '{}' is not a list", what, key);
    return v;
  }
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    for (const Json& v : array(key)) {
      if (!v.is_string()) fail(ErrorCategory::corrupt, "{}: '{}' holds a non-string", what, key);
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  std::vector<Id> ids(const char* key) const {
    std::vector<Id> out;
    for (const std::string& s : strings(key)) out.push_back(Id::from_hex(s, what));
    return out;
  }
  std::vector<uint64_t> counts(const char* key) const {
    std::vector<uint64_t> out;
    for (const Json& v : array(key)) {
      if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
        fail(ErrorCategory::corrupt, "{}: '{}' holds a non-count", what, key);
      out.push_back(v.get<uint64_t>());
    }
    return out;
  }
};

}  // namespace

const ImageRecord* Snapshot::find_image(const std::string& wanted) const {
  for (const ImageRecord& i : images)
    if (i.name == wanted) return &i;
  for (const ImageRecord& i : images)
    if (i.source == wanted) return &i;
  return nullptr;
}

Json snapshot_to_json(const Snapshot& s) {
  Json images = Json::array();
  for (const ImageRecord& i : s.images) {
    Json layers = Json::array();
    for (const LayerIdentity& l : i.layers)
      layers.push_back(Json{{"path", l.path},
                            {"format", l.format},
                            {"virtual_size", l.virtual_size},
                            {"file_size", l.file_size},
                            {"dev", l.dev},
                            {"ino", l.ino},
                            {"mtime_ns", l.mtime_ns},
                            {"ctime_ns", l.ctime_ns},
                            {"trusted", l.trusted}});
    images.push_back(Json{{"name", i.name},
                          {"source", i.source},
                          {"format", i.format},
                          {"size", i.size},
                          {"chunk_size", i.chunk_size},
                          {"chunk_count", i.chunk_count},
                          {"lists", ids_to_json(i.lists)},
                          {"layers", layers},
                          {"allocated_bytes", i.allocated_bytes},
                          {"bytes_read", i.bytes_read},
                          {"bytes_read_per_layer", i.bytes_read_per_layer},
                          {"hole_chunks", i.hole_chunks},
                          {"reused_chunks", i.reused_chunks},
                          {"patched_chunks", i.patched_chunks},
                          {"incremental_from", i.incremental_from}});
  }
  const SnapshotStats& st = s.stats;
  return Json{{"format", 1},
              {"name", s.name},
              {"time_ns", s.time_ns},
              {"host", s.host},
              {"user", s.user},
              {"tags", s.tags},
              {"arche_version", s.arche_version},
              {"parent", s.parent},
              {"paths", s.paths},
              {"tree", ids_to_json(s.tree)},
              {"images", images},
              {"stats",
               {{"files", st.files},
                {"dirs", st.dirs},
                {"symlinks", st.symlinks},
                {"other", st.other},
                {"unchanged_files", st.unchanged_files},
                {"unreadable", st.unreadable},
                {"total_bytes", st.total_bytes},
                {"bytes_read", st.bytes_read},
                {"new_blobs", st.new_blobs},
                {"new_bytes", st.new_bytes},
                {"stored_bytes", st.stored_bytes},
                {"seconds", st.seconds}}}};
}

Snapshot snapshot_from_json(const Json& j, const std::string& what) {
  Reader r{j, what};
  if (r.u64("format") != 1) fail(ErrorCategory::unsupported, "{}: manifest format {} unknown", what, r.u64("format"));
  Snapshot s;
  s.name = r.str("name");
  s.time_ns = r.i64("time_ns");
  s.host = r.str("host");
  s.user = r.str("user");
  s.tags = r.strings("tags");
  s.arche_version = r.str("arche_version");
  s.parent = r.str("parent");
  s.paths = r.strings("paths");
  s.tree = r.ids("tree");
  for (const Json& ij : r.array("images")) {
    Reader ir{ij, what};
    ImageRecord i;
    i.name = ir.str("name");
    i.source = ir.str("source");
    i.format = ir.str("format");
    i.size = ir.u64("size");
    uint64_t chunk_size = ir.u64("chunk_size");
    if (chunk_size < 4096 || chunk_size > (4u << 20) || (chunk_size & (chunk_size - 1)))
      fail(ErrorCategory::corrupt, "{}: image {} has chunk size {}", what, i.name, chunk_size);
    i.chunk_size = static_cast<uint32_t>(chunk_size);
    i.chunk_count = ir.u64("chunk_count");
    i.lists = ir.ids("lists");
    if (i.chunk_count != (i.size + chunk_size - 1) / chunk_size ||
        i.lists.size() != (i.chunk_count + kImageListEntries - 1) / kImageListEntries)
      fail(ErrorCategory::corrupt, "{}: image {}: size, chunk count and lists disagree", what, i.name);
    for (const Json& lj : ir.array("layers")) {
      Reader lr{lj, what};
      LayerIdentity l;
      l.path = lr.str("path");
      l.format = lr.str("format");
      l.virtual_size = lr.u64("virtual_size");
      l.file_size = lr.u64("file_size");
      l.dev = lr.u64("dev");
      l.ino = lr.u64("ino");
      l.mtime_ns = lr.i64("mtime_ns");
      l.ctime_ns = lr.i64("ctime_ns");
      l.trusted = lr.boolean("trusted");
      i.layers.push_back(std::move(l));
    }
    i.allocated_bytes = ir.u64("allocated_bytes");
    i.bytes_read = ir.u64("bytes_read");
    i.bytes_read_per_layer = ir.counts("bytes_read_per_layer");
    i.hole_chunks = ir.u64("hole_chunks");
    i.reused_chunks = ir.u64("reused_chunks");
    i.patched_chunks = ir.u64("patched_chunks");
    i.incremental_from = ir.str("incremental_from");
    s.images.push_back(std::move(i));
  }
  Reader sr{r.at("stats"), what};
  s.stats.files = sr.u64("files");
  s.stats.dirs = sr.u64("dirs");
  s.stats.symlinks = sr.u64("symlinks");
  s.stats.other = sr.u64("other");
  s.stats.unchanged_files = sr.u64("unchanged_files");
  s.stats.unreadable = sr.u64("unreadable");
  s.stats.total_bytes = sr.u64("total_bytes");
  s.stats.bytes_read = sr.u64("bytes_read");
  s.stats.new_blobs = sr.u64("new_blobs");
  s.stats.new_bytes = sr.u64("new_bytes");
  s.stats.stored_bytes = sr.u64("stored_bytes");
  s.stats.seconds = sr.real("seconds");
  return s;
}

std::vector<uint8_t> encode_snapshot_payload(const Snapshot& s) {
  std::string text = snapshot_to_json(s).dump();
  return std::vector<uint8_t>(text.begin(), text.end());
}

Snapshot decode_snapshot_payload(std::span<const uint8_t> data, const std::string& what) {
  Json j = Json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(ErrorCategory::corrupt, "{}: manifest is not valid JSON", what);
  return snapshot_from_json(j, what);
}

void write_snapshot(const Repository& repo, Snapshot& s) {
  std::vector<uint8_t> bytes =
      seal_object(repo.keys(), kSnapshotMagic, kSnapshotVersion, encode_snapshot_payload(s), true);
  s.id = repo.write_content_file("snapshots", bytes);
}

Snapshot read_snapshot(const Repository& repo, const std::string& id) {
  const std::string what = "snapshot " + id.substr(0, 8);
  OpenedObject o = open_object(repo.keys(), repo.read_file("snapshots", id), kSnapshotMagic, kSnapshotVersion.major,
                               what, kMaxSnapshotPayload);
  Snapshot s = decode_snapshot_payload(o.payload, what);
  s.id = id;
  return s;
}

std::vector<Snapshot> load_snapshots(const Repository& repo, std::vector<DamagedManifest>* damaged) {
  std::vector<Snapshot> all;
  for (const std::string& name : repo.list_files("snapshots")) {
    try {
      all.push_back(read_snapshot(repo, name));
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::not_found) continue;  // forgotten meanwhile
      if (!damaged) throw;
      damaged->push_back({name, e.what()});
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return all;
}

namespace {
bool is_id_prefix(const std::string& ref) {
  return ref.size() >= 4 && ref.size() <= 64 &&
         std::all_of(ref.begin(), ref.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
}  // namespace

const DamagedManifest* find_damaged(const std::vector<DamagedManifest>& damaged, const std::string& ref) {
  if (!is_id_prefix(ref)) return nullptr;
  const DamagedManifest* found = nullptr;
  for (const DamagedManifest& d : damaged)
    if (d.id.compare(0, ref.size(), ref) == 0) {
      if (found) fail(ErrorCategory::usage, "snapshot id prefix '{}' is ambiguous", ref);
      found = &d;
    }
  return found;
}

const Snapshot& resolve_snapshot(const std::vector<Snapshot>& all, const std::string& ref,
                                 const std::vector<DamagedManifest>& damaged) {
  if (ref == "latest") {
    if (all.empty()) fail(ErrorCategory::not_found, "the repository has no snapshots");
    return all.back();
  }
  const Snapshot* found = nullptr;
  size_t matches = 0;
  for (const Snapshot& s : all)
    if (s.name == ref) {
      found = &s;  // the newest of equal names wins
      ++matches;
    }
  if (matches > 1)
    fail(ErrorCategory::usage, "{} snapshots are named '{}'; give one by its id (arche backup list)", matches, ref);
  if (found) return *found;
  if (is_id_prefix(ref)) {
    for (const Snapshot& s : all)
      if (s.id.compare(0, ref.size(), ref) == 0) {
        if (found) fail(ErrorCategory::usage, "snapshot id prefix '{}' is ambiguous", ref);
        found = &s;
      }
    if (found) return *found;
    if (const DamagedManifest* d = find_damaged(damaged, ref))
      fail(ErrorCategory::corrupt, "snapshot {} is damaged and cannot be used: {} (arche backup repair snapshots removes it)",
           d->id.substr(0, 8), d->error);
  }
  fail(ErrorCategory::not_found, "no snapshot named '{}' (arche backup list shows them)", ref);
}

std::string format_time_ns(int64_t time_ns) {
  std::time_t t = static_cast<std::time_t>(time_ns / 1000000000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::pair<std::string, std::string> split_repo_ref(const std::string& text, bool name_required) {
  size_t at = text.rfind("::");
  if (at == std::string::npos) {
    if (name_required) fail(ErrorCategory::usage, "'{}': expected REPO::NAME", text);
    return {text, ""};
  }
  std::string repo = text.substr(0, at), name = text.substr(at + 2);
  if (repo.empty()) fail(ErrorCategory::usage, "'{}': the repository path is empty", text);
  if (name_required && name.empty()) fail(ErrorCategory::usage, "'{}': the snapshot name is empty", text);
  return {repo, name};
}

}  // namespace arche::backup
