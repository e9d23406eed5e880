#include "volume/listing.h"

#include <algorithm>

#include <fmt/format.h>

#include <ctime>

#include "core/units.h"
#include "volume/volume_path.h"

namespace arche::volume {

namespace {

Json or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string local_minutes(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000 - (ns % 1000000000 < 0 ? 1 : 0));
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace

std::string rfc3339(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000 - (ns % 1000000000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string mode_string(FileType type, uint32_t mode) {
  char kind = '?';
  switch (type) {
    case FileType::regular: kind = '-'; break;
    case FileType::directory: kind = 'd'; break;
    case FileType::symlink: kind = 'l'; break;
    case FileType::block_device: kind = 'b'; break;
    case FileType::char_device: kind = 'c'; break;
    case FileType::fifo: kind = 'p'; break;
    case FileType::socket: kind = 's'; break;
    case FileType::unknown: break;
  }
  std::string s(1, kind);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (mode & (0400 >> i)) ? rwx[i] : '-';
  if (mode & 04000) s[3] = (mode & 0100) ? 's' : 'S';
  if (mode & 02000) s[6] = (mode & 0010) ? 's' : 'S';
  if (mode & 01000) s[9] = (mode & 0001) ? 't' : 'T';
  return s;
}

Json volume_json(const Tree& tree, const VolumeInfo& v, const Filesystem* fs) {
  Json j{{"name", volume_address(v)},
         {"kind", to_string(v.kind)},
         {"disk", tree.disk_names().at(v.disk)},
         {"offset", v.kind == VolumeKind::partition ? Json(v.offset) : Json(nullptr)},
         {"size", v.size},
         {"scheme", or_null(v.scheme)},
         {"type", or_null(v.type_name)},
         {"type-id", or_null(v.type_id)},
         {"partition-name", or_null(v.part_name)},
         {"partition-uuid", or_null(v.part_uuid)},
         {"fs", or_null(v.content)},
         {"label", or_null(fs && !fs->label().empty() ? fs->label() : v.label)},
         {"uuid", or_null(fs && !fs->uuid().empty() ? fs->uuid() : v.uuid)},
         {"used", fs ? Json(fs->used_bytes()) : Json(nullptr)},
         {"browsable", v.browsable},
         {"unsupported", or_null(v.unsupported)}};
  if (v.kind == VolumeKind::volume_group) j["pvs"] = v.pvs;
  std::vector<std::string> notes = v.notes;
  if (fs)
    for (const std::string& n : fs->notes()) notes.push_back(n);
  j["notes"] = notes;
  return j;
}

std::vector<std::string> volume_lines(const Tree& tree, const std::vector<const Filesystem*>& opened) {
  std::vector<std::string> out;
  out.push_back(fmt::format("{:<14} {:<14} {:>10}  {:<22} {:<12} {:<16} {}", "NAME", "KIND", "SIZE", "TYPE", "FS",
                            "LABEL", "UUID"));
  const auto& volumes = tree.volumes();
  for (size_t i = 0; i < volumes.size(); ++i) {
    const VolumeInfo& v = volumes[i];
    const Filesystem* fs = i < opened.size() ? opened[i] : nullptr;
    // A disk is shown by its name; "/" addresses only a file system on the whole disk.
    std::string name = v.kind == VolumeKind::disk && !v.browsable ? tree.disk_names()[v.disk] : volume_address(v);
    const std::string label = fs && !fs->label().empty() ? fs->label() : v.label;
    const std::string uuid = fs && !fs->uuid().empty() ? fs->uuid() : v.uuid;
    out.push_back(fmt::format("{:<14} {:<14} {:>10}  {:<22} {:<12} {:<16} {}", name, to_string(v.kind),
                              format_size(v.size), v.type_name.empty() ? v.type_id : v.type_name,
                              v.content.empty() ? "-" : v.content, label.empty() ? "-" : label,
                              uuid.empty() ? "-" : uuid));
    if (!v.unsupported.empty() && v.kind != VolumeKind::disk) out.push_back("    " + v.unsupported);
    for (const std::string& n : v.notes) out.push_back("    note: " + n);
    if (fs)
      for (const std::string& n : fs->notes()) out.push_back("    note: " + n);
  }
  return out;
}

Json entry_json(const DirEntry& e, const std::string& path, const std::string& target,
                const std::vector<std::string>& streams) {
  const FileStat& s = e.stat;
  Json j{{"name", e.name},
         {"path", path},
         {"type", to_string(s.type)},
         {"mode", fmt::format("{:04o}", s.mode)},
         {"uid", s.uid},
         {"gid", s.gid},
         {"size", s.size},
         {"nlink", s.nlink},
         {"inode", s.inode},
         {"mtime", rfc3339(s.mtime_ns)},
         {"mtime-ns", s.mtime_ns},
         {"atime", rfc3339(s.atime_ns)},
         {"ctime", rfc3339(s.ctime_ns)},
         {"btime", s.btime_ns ? Json(rfc3339(*s.btime_ns)) : Json(nullptr)},
         {"target", s.type == FileType::symlink ? Json(target) : Json(nullptr)}};
  if (!streams.empty()) j["streams"] = streams;
  return j;
}

std::string entry_line(const DirEntry& e, const std::string& target) {
  const FileStat& s = e.stat;
  std::string line = fmt::format("{} {:>11} {:>14}  {}  {}", mode_string(s.type, s.mode),
                                 fmt::format("{}:{}", s.uid, s.gid), s.size, local_minutes(s.mtime_ns), e.name);
  if (s.type == FileType::symlink) line += " -> " + target;
  return line;
}

PathListing list_path(Filesystem& fs, const std::string& path) {
  const FileStat st = fs.stat(path);
  PathListing out{st.type == FileType::directory, path, {}};
  if (out.directory) {
    out.entries = fs.list(path);
    std::sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  } else {
    const size_t slash = path.rfind('/');
    out.entries.push_back({path.substr(slash + 1), st});
    out.parent = slash == 0 ? "/" : path.substr(0, slash);
  }
  return out;
}

}  // namespace arche::volume
