#include "cli/p2v_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"

namespace arche::cli::p2v_output {

using convert::CopiedVolume;
using convert::CopyMethod;

namespace {

std::string volume_name(const convert::UsedMap& map, const CopiedVolume& v) {
  const std::string& disk = map.disks[v.disk].name;
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

Json volumes_json(const convert::UsedMap& map) {
  Json volumes = Json::array();
  for (const CopiedVolume& v : map.volumes)
    volumes.push_back({{"disk", map.disks[v.disk].name},
                       {"volume", v.volume},
                       {"content", v.content.empty() ? Json() : Json(v.content)},
                       {"method", to_string(v.method)},
                       {"reason", v.reason.empty() ? Json() : Json(v.reason)},
                       {"size", v.size},
                       {"selected-bytes", v.selected},
                       {"fs-used-bytes", v.method == CopyMethod::used_ranges ? Json(v.fs_used) : Json()}});
  return volumes;
}

void show_volumes(const convert::UsedMap& map) {
  for (const CopiedVolume& v : map.volumes)
    std::printf("  %-28s %10s of %-10s %s\n", volume_name(map, v).c_str(), format_size(v.selected).c_str(),
                format_size(v.size).c_str(), how(v).c_str());
}

Json to_json(const convert::ConversionResult& r, bool live_source) {
  Json disks = Json::array();
  for (const convert::ImagedDisk& d : r.images)
    disks.push_back({{"source", d.source},
                     {"target", d.target},
                     {"format", d.format},
                     {"size", d.size},
                     {"selected-bytes", d.selected},
                     {"written-bytes", d.written},
                     {"file-bytes", d.file_bytes}});
  return {{"disks", disks}, {"volumes", volumes_json(r.map)}, {"live-source", live_source}, {"seconds", r.seconds}};
}

}  // namespace

void show_imaged(const Context& ctx, const convert::ConversionResult& r, bool live_source) {
  if (ctx.json) return print_json(to_json(r, live_source));
  if (ctx.quiet) return;
  show_volumes(r.map);
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

void show_sent(const Context& ctx, const convert::SendResult& r, const std::string& to) {
  if (ctx.json) {
    Json disks = Json::array();
    for (const convert::SentDisk& d : r.disks)
      disks.push_back({{"source", d.source},
                       {"name", d.name},
                       {"size", d.size},
                       {"selected-bytes", d.selected},
                       {"sent-bytes", d.sent},
                       {"resumed-from", d.resumed_from},
                       {"already-stored", d.already_stored},
                       {"file-bytes", d.file_bytes}});
    return print_json({{"to", to},
                       {"disks", disks},
                       {"volumes", volumes_json(r.map)},
                       {"connections", r.connections},
                       {"seconds", r.seconds}});
  }
  if (ctx.quiet) return;
  show_volumes(r.map);
  for (const convert::SentDisk& d : r.disks) {
    if (d.already_stored) {
      std::printf("%s -> %s %s: stored already by an earlier run\n", d.source.c_str(), to.c_str(), d.name.c_str());
      continue;
    }
    std::printf("%s -> %s %s: %s of %s selected, %s sent%s, image %s\n", d.source.c_str(), to.c_str(),
                d.name.c_str(), format_size(d.selected).c_str(), format_size(d.size).c_str(),
                format_size(d.sent).c_str(),
                d.resumed_from ? fmt::format(" (resumed at {})", format_size(d.resumed_from)).c_str() : "",
                format_size(d.file_bytes).c_str());
  }
  std::printf("done in %.1f s over %u connection%s\n", r.seconds, r.connections, r.connections == 1 ? "" : "s");
}

void show_listening(const Context& ctx, const std::string& address, const std::string& token) {
  if (ctx.json) {
    std::printf("%s\n", Json({{"listen", address}, {"token", token}}).dump().c_str());
  } else {
    std::printf("listening on %s\ntoken: %s\non the old server: arche p2v send DISK... --to THIS-HOST:%s (it asks for the token)\n",
                address.c_str(), token.c_str(), address.substr(address.rfind(':') + 1).c_str());
  }
  std::fflush(stdout);
}

void show_received(const Context& ctx, const convert::ReceiveResult& r) {
  if (ctx.json) {
    Json disks = Json::array();
    for (const convert::ReceivedDisk& d : r.disks)
      disks.push_back({{"name", d.name},
                       {"target", d.target},
                       {"format", d.format},
                       {"size", d.size},
                       {"received-bytes", d.received},
                       {"resumed-from", d.resumed_from},
                       {"already-stored", d.already_stored},
                       {"file-bytes", d.file_bytes}});
    return print_json({{"disks", disks},
                       {"sessions", r.sessions},
                       {"refused", r.refused},
                       {"lost", r.lost},
                       {"seconds", r.seconds}});
  }
  if (ctx.quiet) return;
  for (const convert::ReceivedDisk& d : r.disks)
    std::printf("%s (%s): %s received%s, image %s\n", d.target.c_str(), d.format.c_str(),
                format_size(d.received).c_str(),
                d.resumed_from ? fmt::format(" (resumed at {})", format_size(d.resumed_from)).c_str() : "",
                format_size(d.file_bytes).c_str());
  std::printf("done in %.1f s: %u session%s, %u dropped, %u refused (wrong token)\n", r.seconds, r.sessions,
              r.sessions == 1 ? "" : "s", r.lost, r.refused);
}

}  // namespace arche::cli::p2v_output
