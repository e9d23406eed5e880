#include "cli/p2v_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"

namespace arche::cli::p2v_output {

using convert::CopiedVolume;
using convert::CopyMethod;

namespace {

std::string volume_name(const convert::ConversionResult& r, const CopiedVolume& v) {
  const std::string& disk = r.map.disks[v.disk].name;
  if (v.method == CopyMethod::layout) return disk + " (outside partitions)";
  return v.volume.empty() ? disk : disk + " " + v.volume;
}

std::string how(const CopiedVolume& v) {
  switch (v.method) {
    case CopyMethod::used_ranges: return fmt::format("used blocks of {}", v.content);
    case CopyMethod::swap_header: return "swap header page";
    case CopyMethod::lvm: return "LVM2 label, metadata and unreadable LVs; free extents skipped";
    case CopyMethod::layout: return "partition tables, boot loader, gaps";
    case CopyMethod::whole: return "COPIED WHOLE: " + v.reason;
  }
  return "?";
}

Json to_json(const convert::ConversionResult& r, bool live_source) {
  Json volumes = Json::array();
  for (const CopiedVolume& v : r.map.volumes)
    volumes.push_back({{"disk", r.map.disks[v.disk].name},
                       {"volume", v.volume},
                       {"content", v.content.empty() ? Json() : Json(v.content)},
                       {"method", to_string(v.method)},
                       {"reason", v.reason.empty() ? Json() : Json(v.reason)},
                       {"size", v.size},
                       {"selected-bytes", v.selected},
                       {"fs-used-bytes", v.method == CopyMethod::used_ranges ? Json(v.fs_used) : Json()}});
  Json disks = Json::array();
  for (const convert::ImagedDisk& d : r.images)
    disks.push_back({{"source", d.source},
                     {"target", d.target},
                     {"format", d.format},
                     {"size", d.size},
                     {"selected-bytes", d.selected},
                     {"written-bytes", d.written},
                     {"file-bytes", d.file_bytes}});
  return {{"disks", disks}, {"volumes", volumes}, {"live-source", live_source}, {"seconds", r.seconds}};
}

}  // namespace

void show_imaged(const Context& ctx, const convert::ConversionResult& r, bool live_source) {
  if (ctx.json) return print_json(to_json(r, live_source));
  if (ctx.quiet) return;
  for (const CopiedVolume& v : r.map.volumes)
    std::printf("  %-28s %10s of %-10s %s\n", volume_name(r, v).c_str(), format_size(v.selected).c_str(),
                format_size(v.size).c_str(), how(v).c_str());
  for (const convert::ImagedDisk& d : r.images)
    std::printf("%s -> %s (%s): %s of %s copied, %s written, file %s\n", d.source.c_str(), d.target.c_str(),
                d.format.c_str(), format_size(d.selected).c_str(), format_size(d.size).c_str(),
                format_size(d.written).c_str(), format_size(d.file_bytes).c_str());
  std::printf("done in %.1f s\n", r.seconds);
  if (r.map.any_whole())
    std::printf("note: volumes marked COPIED WHOLE could not be mapped; all of their bytes are in the image\n");
  if (live_source)
    std::printf("note: a block device in use may change while it is read: image it again with its services stopped before cutover (the delta pass `p2v sync` is not in this version)\n");
}

}  // namespace arche::cli::p2v_output
