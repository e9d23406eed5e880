#include "cli/backup_browse_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"
#include "volume/listing.h"
#include "volume/volume_path.h"

namespace arche::cli::backup_browse_output {

using backup::BrowseTarget;
using backup::SnapshotBrowser;

namespace {

// "disk.raw/p1", "disk.raw/vg0/root", "disk.raw" (a disk: its whole-disk file system if any).
std::string address_of(const volume::Tree& tree, const volume::VolumeInfo& v) {
  const std::string& disk = tree.disk_names().at(v.disk);
  return v.name.empty() ? disk : disk + "/" + v.name;
}

Json snapshot_fields(const SnapshotBrowser& b) {
  const backup::Snapshot& s = b.snapshot();
  return Json{{"snapshot", s.name}, {"id", s.id}, {"time", volume::rfc3339(s.time_ns)}};
}

// The volumes of image `image` (all images when null), opened where they can be.
Json volumes_json(SnapshotBrowser& b, uint32_t image) {
  Json list = Json::array();
  volume::Tree& tree = b.images();
  const auto& volumes = tree.volumes();
  for (size_t i = 0; i < volumes.size(); ++i) {
    if (volumes[i].disk != image) continue;
    std::string error;
    const volume::Filesystem* fs = b.open_volume(i, &error);
    Json v = volume::volume_json(tree, volumes[i], fs);
    v["address"] = address_of(tree, volumes[i]);
    v["error"] = error.empty() ? Json(nullptr) : Json(error);
    list.push_back(std::move(v));
  }
  return list;
}

Json image_json(SnapshotBrowser& b, uint32_t image) {
  const backup::ImageRecord& r = b.snapshot().images.at(image);
  return Json{{"name", r.name}, {"format", r.format}, {"size", r.size}, {"source", r.source},
              {"volumes", volumes_json(b, image)}};
}

void print_volume_lines(SnapshotBrowser& b, uint32_t image) {
  volume::Tree& tree = b.images();
  const backup::ImageRecord& r = b.snapshot().images.at(image);
  std::printf("%s  %s, %s\n", r.name.c_str(), format_size(r.size).c_str(), r.format.c_str());
  const auto& volumes = tree.volumes();
  for (size_t i = 0; i < volumes.size(); ++i) {
    const volume::VolumeInfo& v = volumes[i];
    if (v.disk != image || (v.kind == volume::VolumeKind::disk && !v.browsable)) continue;
    std::string error;
    const volume::Filesystem* fs = b.open_volume(i, &error);
    const std::string label = fs && !fs->label().empty() ? fs->label() : v.label;
    const std::string uuid = fs && !fs->uuid().empty() ? fs->uuid() : v.uuid;
    std::printf("  %-22s %-14s %10s  %-22s %-10s %-14s %s\n", address_of(tree, v).c_str(), to_string(v.kind),
                format_size(v.size).c_str(), (v.type_name.empty() ? v.type_id : v.type_name).c_str(),
                v.content.empty() ? "-" : v.content.c_str(), label.empty() ? "-" : label.c_str(),
                uuid.empty() ? "-" : uuid.c_str());
    if (!v.unsupported.empty()) std::printf("      %s\n", v.unsupported.c_str());
    for (const std::string& n : v.notes) std::printf("      note: %s\n", n.c_str());
    if (fs)
      for (const std::string& n : fs->notes()) std::printf("      note: %s\n", n.c_str());
    if (!error.empty()) std::printf("      cannot open: %s\n", error.c_str());
  }
}

Json entries_json(const std::vector<backup::BrowseEntry>& entries) {
  Json list = Json::array();
  for (const backup::BrowseEntry& e : entries) list.push_back(volume::entry_json(e.entry, e.path, e.target, e.streams));
  return list;
}

std::vector<backup::BrowseEntry> file_root(SnapshotBrowser& b) {
  BrowseTarget root;
  root.kind = BrowseTarget::Kind::entry;
  root.fs = b.files();
  root.path = "/";
  return b.list(root, false);
}

}  // namespace

void show_snapshot(const Context& ctx, SnapshotBrowser& b) {
  const uint32_t images = static_cast<uint32_t>(b.snapshot().images.size());
  if (ctx.json) {
    Json j = snapshot_fields(b);
    Json list = Json::array();
    for (uint32_t i = 0; i < images; ++i) list.push_back(image_json(b, i));
    j["images"] = list;
    j["files"] = b.has_files() ? entries_json(file_root(b)) : Json(nullptr);
    print_json(j);
    return;
  }
  for (uint32_t i = 0; i < images; ++i) print_volume_lines(b, i);
  if (b.has_files()) {
    if (images) std::puts("files:");
    for (const backup::BrowseEntry& e : file_root(b)) std::puts(volume::entry_line(e.entry, e.target).c_str());
  }
}

void show_image(const Context& ctx, SnapshotBrowser& b, uint32_t image) {
  if (ctx.json) {
    Json j = snapshot_fields(b);
    j["image"] = image_json(b, image);
    print_json(j);
    return;
  }
  print_volume_lines(b, image);
}

void show_entries(const Context& ctx, SnapshotBrowser& b, const BrowseTarget& t, const std::string& address) {
  const bool directory = t.fs->stat(t.path).type == volume::FileType::directory;
  std::vector<backup::BrowseEntry> entries = b.list(t, ctx.json);
  if (!ctx.json) {
    for (const backup::BrowseEntry& e : entries) std::puts(volume::entry_line(e.entry, e.target).c_str());
    return;
  }
  Json j = snapshot_fields(b);
  j["path"] = address;
  j["image"] = t.image ? Json(b.snapshot().images[*t.image].name) : Json(nullptr);
  j["volume"] = t.image ? Json(t.volume) : Json(nullptr);
  j["fs"] = t.fs->type();
  j["directory"] = directory;
  j["entries"] = entries_json(entries);
  print_json(j);
}

void show_restored(const Context& ctx, SnapshotBrowser& b, const std::string& to, const volume::ExtractStats& total) {
  if (ctx.json) {
    Json j = snapshot_fields(b);
    j["to"] = to;
    j["files"] = total.files;
    j["directories"] = total.dirs;
    j["links"] = total.links;
    j["other"] = total.other;
    j["bytes"] = total.bytes;
    j["warnings"] = total.warnings;
    j["repository-bytes-read"] = b.bytes_fetched();
    print_json(j);
    return;
  }
  say(ctx, fmt::format("restored {} file{}, {} director{}, {} link{} ({}) into {}; read {} from the repository{}",
                       total.files, total.files == 1 ? "" : "s", total.dirs, total.dirs == 1 ? "y" : "ies", total.links,
                       total.links == 1 ? "" : "s", format_size(total.bytes), to, format_size(b.bytes_fetched()),
                       total.warnings ? fmt::format("; {} warning(s)", total.warnings) : ""));
}

}  // namespace arche::cli::backup_browse_output
