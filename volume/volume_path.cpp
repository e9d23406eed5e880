#include "volume/volume_path.h"

#include <vector>

#include "core/error.h"

namespace arche::volume {

std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = end + 1;
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

std::string volume_address(const VolumeInfo& v) { return v.name.empty() ? "/" : v.name; }

namespace {

std::string known_volumes(const Tree& tree, uint32_t disk) {
  std::string out;
  for (const VolumeInfo& v : tree.volumes()) {
    if (v.disk != disk || v.kind == VolumeKind::volume_group) continue;
    if (v.kind == VolumeKind::disk && !v.browsable) continue;
    out += (out.empty() ? "" : ", ") + volume_address(v);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

Location resolve(const Tree& tree, uint32_t disk, std::string_view address) {
  if (address.empty()) fail(ErrorCategory::usage, "empty path: give p1/..., VG/LV/... or /... for a whole-disk file system");
  const auto& volumes = tree.volumes();
  const std::string disk_name = disk < tree.disk_names().size() ? tree.disk_names()[disk] : "?";
  std::optional<size_t> whole;
  for (size_t i = 0; i < volumes.size(); ++i)
    if (volumes[i].kind == VolumeKind::disk && volumes[i].disk == disk) whole = i;
  if (!whole) fail(ErrorCategory::not_found, "there is no disk {}", disk);

  if (address.front() == '/') {
    if (!volumes[*whole].browsable)
      fail(ErrorCategory::not_found, "{} holds no file system of its own ({}); its volumes: {}", disk_name,
           volumes[*whole].content.empty() ? "nothing recognised" : volumes[*whole].content,
           known_volumes(tree, disk));
    return {*whole, normalize_path(address)};
  }
  const size_t slash = address.find('/');
  const std::string_view first = address.substr(0, slash);
  const std::string_view rest = slash == std::string_view::npos ? std::string_view() : address.substr(slash + 1);
  for (size_t i = 0; i < volumes.size(); ++i) {
    const VolumeInfo& v = volumes[i];
    if (v.kind == VolumeKind::partition && v.disk == disk && v.name == first) return {i, normalize_path(rest)};
  }
  for (const VolumeInfo& g : volumes) {
    if (g.kind != VolumeKind::volume_group || g.name != first) continue;
    const size_t lv_slash = rest.find('/');
    const std::string_view lv = rest.substr(0, lv_slash);
    if (lv.empty()) fail(ErrorCategory::not_found, "{} is a volume group: give VG/LV/PATH", g.name);
    const std::string full = g.name + "/" + std::string(lv);
    for (size_t i = 0; i < volumes.size(); ++i)
      if (volumes[i].kind == VolumeKind::logical_volume && volumes[i].name == full)
        return {i, normalize_path(lv_slash == std::string_view::npos ? std::string_view() : rest.substr(lv_slash + 1))};
    fail(ErrorCategory::not_found, "volume group {} has no logical volume {}", g.name, lv);
  }
  if (volumes[*whole].browsable) return {*whole, normalize_path(address)};
  fail(ErrorCategory::not_found, "{} has no partition or volume group {} (its volumes: {})", disk_name, first,
       known_volumes(tree, disk));
}

}  // namespace arche::volume
