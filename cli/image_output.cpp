#include "cli/image_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"

namespace arche::cli::image_output {

namespace {

using image::Extent;
using image::ExtentKind;

void out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

Json info_json(const image::ImageInfo& i) {
  return Json{{"filename", i.filename},
              {"format", i.format},
              {"virtual-size", i.virtual_size},
              {"actual-size", i.actual_size},
              {"cluster-size", i.cluster_size ? Json(i.cluster_size) : Json(nullptr)},
              {"dirty-flag", i.dirty},
              {"encrypted", i.encrypted},
              {"backing-filename", or_null(i.backing_file)},
              {"full-backing-filename", or_null(i.full_backing_file)},
              {"backing-filename-format", or_null(i.backing_format)},
              {"snapshots", i.snapshots},
              {"format-specific", Json{{"type", i.format}, {"data", i.format_specific}}}};
}

// Format-specific facts, nested objects indented as qemu-img shows them.
void append_facts(std::string& text, const Json& facts, int indent) {
  for (const auto& [key, value] : facts.items()) {
    std::string pad(static_cast<size_t>(indent), ' ');
    std::string name = key;
    for (char& c : name)
      if (c == '-') c = ' ';
    if (value.is_object()) {
      text += fmt::format("{}{}:\n", pad, name);
      append_facts(text, value, indent + 4);
    } else if (!value.is_null()) {
      text += fmt::format("{}{}: {}\n", pad, name, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
}

std::string info_text(const image::ImageInfo& i) {
  std::string text = fmt::format("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\n", i.filename,
                                 i.format, format_size(i.virtual_size), i.virtual_size, format_size(i.actual_size));
  if (i.encrypted) text += "encrypted: yes\n";
  if (i.cluster_size) text += fmt::format("cluster_size: {}\n", i.cluster_size);
  if (i.backing_file) {
    text += fmt::format("backing file: {}", *i.backing_file);
    if (i.full_backing_file && *i.full_backing_file != *i.backing_file)
      text += fmt::format(" (actual path: {})", *i.full_backing_file);
    text += "\n";
    text += fmt::format("backing file format: {}\n", i.backing_format.value_or("(not recorded)"));
  }
  if (i.dirty) text += "dirty: yes (not closed cleanly)\n";
  if (!i.snapshots.empty()) {
    text += "Snapshot list:\nID        TAG               VM SIZE                DATE     VM CLOCK\n";
    for (const Json& s : i.snapshots)
      text += fmt::format("{:<9} {:<17} {:>7} {:>25} {:>12}\n", s["id"].get<std::string>(),
                          s["name"].get<std::string>(), format_size(s["vm-state-size"].get<uint64_t>()),
                          s["date"].get<std::string>(), s["vm-clock-nsec"].get<uint64_t>());
  }
  if (!i.format_specific.empty()) {
    text += "Format specific information:\n";
    append_facts(text, i.format_specific, 4);
  }
  return text;
}

}  // namespace

void show_create_options(const Context& ctx, const image::FormatDriver& driver) {
  std::vector<image::CreateOptionInfo> options = driver.create_options();
  if (ctx.json) {
    Json all = Json::array();
    for (const auto& o : options)
      all.push_back(
          Json{{"name", o.name}, {"values", o.values}, {"default", o.default_value}, {"description", o.description}});
    print_json(Json{{"format", driver.name()}, {"options", all}});
    return;
  }
  std::string text = fmt::format("Creation options of {} (-o KEY=VALUE[,KEY=VALUE...]):\n", driver.name());
  if (options.empty()) text += "  (none)\n";
  for (const auto& o : options)
    text += fmt::format("  {:<18} {}\n  {:<18} {} (default: {})\n", o.name + "=", o.values, "", o.description,
                        o.default_value);
  out(text);
}

void show_created(const Context& ctx, const std::string& file, const image::ImageInfo& info) {
  if (ctx.json) {
    print_json(Json{{"filename", file},
                    {"format", info.format},
                    {"virtual-size", info.virtual_size},
                    {"backing-filename", or_null(info.backing_file)},
                    {"backing-filename-format", or_null(info.backing_format)}});
    return;
  }
  std::string line = fmt::format("created {} ({}, {})", file, info.format, format_size(info.virtual_size));
  if (info.backing_file)
    line += fmt::format(", backing {} ({})", *info.backing_file, info.backing_format.value_or("?"));
  say(ctx, line);
}

void show_info(const Context& ctx, const std::vector<image::ImageInfo>& infos, bool chain) {
  if (ctx.json) {
    if (!chain) {
      print_json(info_json(infos[0]));
      return;
    }
    Json all = Json::array();
    for (const auto& i : infos) all.push_back(info_json(i));
    print_json(all);
    return;
  }
  std::string text;
  for (size_t k = 0; k < infos.size(); ++k) text += (k ? "\n" : "") + info_text(infos[k]);
  out(text);
}

void show_check(const Context& ctx, const std::string& file, const std::string& format, const image::CheckResult& r) {
  if (ctx.json) {
    auto counted = [&](uint64_t n) { return r.supported ? Json(n) : Json(nullptr); };
    print_json(Json{{"filename", file},
                    {"format", format},
                    {"supported", r.supported},
                    {"check-errors", r.check_errors},
                    {"image-end-offset", counted(r.image_end_offset)},
                    {"total-clusters", counted(r.total_clusters)},
                    {"allocated-clusters", counted(r.allocated_clusters)},
                    {"fragmented-clusters", counted(r.fragmented_clusters)},
                    {"compressed-clusters", counted(r.compressed_clusters)},
                    {"leaks", counted(r.leaks)},
                    {"corruptions", counted(r.corruptions)},
                    {"leaks-fixed", counted(r.leaks_fixed)},
                    {"corruptions-fixed", counted(r.corruptions_fixed)},
                    {"messages", r.messages}});
    return;
  }
  if (!r.supported) {
    out(fmt::format("{} images have no metadata to check.\n", format));
    return;
  }
  std::string text;
  for (const std::string& m : r.messages) text += m + "\n";
  if (r.leaks_fixed || r.corruptions_fixed)
    text += fmt::format(
        "{}The following inconsistencies were found and repaired:\n    {} leaked clusters\n    {} "
        "corruptions\n\n",
        r.messages.empty() ? "" : "\n", r.leaks_fixed, r.corruptions_fixed);
  if (r.corruptions)
    text += fmt::format(
        "\n{} errors were found on the image.\nData may be corrupted, or further writes to the image "
        "may corrupt it.\n",
        r.corruptions);
  if (r.leaks)
    text += fmt::format(
        "\n{} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to "
        "data.\n",
        r.leaks);
  if (!r.corruptions && !r.leaks) text += "No errors were found on the image.\n";
  if (r.total_clusters) {
    // Like qemu-img: allocation relative to the disk, the rest relative to what is allocated.
    auto pct = [](uint64_t n, uint64_t of) {
      return of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0;
    };
    text +=
        fmt::format("{}/{} = {:.2f}% allocated, {:.2f}% fragmented, {:.2f}% compressed clusters\n",
                    r.allocated_clusters, r.total_clusters, pct(r.allocated_clusters, r.total_clusters),
                    pct(r.fragmented_clusters, r.allocated_clusters), pct(r.compressed_clusters, r.allocated_clusters));
  }
  text += fmt::format("Image end offset: {}\n", r.image_end_offset);
  out(text);
}

void show_map(const Context& ctx, const std::vector<Extent>& extents) {
  if (ctx.json) {
    Json all = Json::array();
    for (const Extent& e : extents)
      all.push_back(Json{{"start", e.offset},
                         {"length", e.length},
                         {"depth", e.depth},
                         {"present", e.kind != ExtentKind::unallocated},
                         {"zero", e.kind != ExtentKind::data},
                         {"data", e.kind == ExtentKind::data},
                         {"compressed", e.compressed},
                         {"kind", image::to_string(e.kind)},
                         {"offset", or_null(e.host_offset)},
                         {"file", e.kind == ExtentKind::unallocated ? Json(nullptr) : Json(e.file)}});
    print_json(all);
    return;
  }
  std::string text =
      fmt::format("{:<18} {:<18} {:<12} {:<5} {:<18} {}\n", "Offset", "Length", "Kind", "Depth", "Mapped to", "File");
  for (const Extent& e : extents) {
    std::string mapped = e.host_offset ? fmt::format("0x{:x}", *e.host_offset) : (e.compressed ? "compressed" : "-");
    text += fmt::format("{:<18} {:<18} {:<12} {:<5} {:<18} {}\n", fmt::format("0x{:x}", e.offset),
                        fmt::format("0x{:x}", e.length), image::to_string(e.kind), e.depth, mapped,
                        e.kind == ExtentKind::unallocated ? "" : e.file);
  }
  out(text);
}

void show_compare(const Context& ctx, const image::CompareResult& r) {
  if (ctx.json) {
    print_json(
        Json{{"identical", r.equal}, {"first-difference", or_null(r.first_difference)}, {"reason", or_null(r.reason)}});
    return;
  }
  say(ctx, r.equal ? "Images are identical." : r.reason);
}

void show_convert(const Context& ctx, const std::string& src, const std::string& dst, const std::string& format,
                  const image::ConvertStats& s) {
  if (ctx.json) {
    print_json(Json{{"source", src},
                    {"target", dst},
                    {"format", format},
                    {"virtual-size", s.virtual_size},
                    {"bytes-read", s.bytes_read},
                    {"bytes-written", s.bytes_written},
                    {"bytes-cloned", s.bytes_cloned},
                    {"file-bytes", s.file_bytes},
                    {"seconds", s.seconds}});
    return;
  }
  // Data shared with the source (reflink) is data too, but it took no copying.
  const std::string shared =
      s.bytes_cloned ? fmt::format(" ({} shared with the source, not copied)", format_size(s.bytes_cloned)) : "";
  say(ctx, fmt::format("converted {} -> {} ({}): {} virtual, {} of data{}, {} on disk, in {:.2f} s", src, dst, format,
                       format_size(s.virtual_size), format_size(s.bytes_written + s.bytes_cloned), shared,
                       format_size(s.file_bytes), s.seconds));
}

void show_commit(const Context& ctx, const std::string& overlay, const image::CommitStats& s) {
  if (ctx.json) {
    print_json(Json{
        {"overlay", overlay}, {"base", s.base}, {"bytes-copied", s.bytes_copied}, {"bytes-zeroed", s.bytes_zeroed}});
    return;
  }
  say(ctx, fmt::format("Image committed into {} ({} copied, {} zeroed).", s.base, format_size(s.bytes_copied),
                       format_size(s.bytes_zeroed)));
}

void show_rebase(const Context& ctx, const std::string& overlay, const std::string& backing,
                 const image::RebaseStats& s) {
  if (ctx.json) {
    print_json(Json{{"overlay", overlay}, {"backing", or_null(backing)}, {"bytes-copied", s.bytes_copied}});
    return;
  }
  say(ctx, backing.empty()
               ? fmt::format("{} has no backing file now ({} copied in).", overlay, format_size(s.bytes_copied))
               : fmt::format("{} is now backed by {} ({} copied in).", overlay, backing, format_size(s.bytes_copied)));
}

void show_resize(const Context& ctx, const std::string& file, uint64_t old_size, uint64_t new_size) {
  if (ctx.json) {
    print_json(Json{{"filename", file}, {"old-size", old_size}, {"virtual-size", new_size}});
    return;
  }
  say(ctx, fmt::format("Image resized to {} ({} bytes).", format_size(new_size), new_size));
}

void show_measure(const Context& ctx, const image::Measurement& m) {
  if (ctx.json) {
    print_json(Json{{"required", m.required}, {"fully-allocated", m.fully_allocated}});
    return;
  }
  out(fmt::format("required size: {}\nfully allocated size: {}\n", m.required, m.fully_allocated));
}

void show_written(const Context& ctx, const std::string& file, const std::string& what, uint64_t offset) {
  if (ctx.json) {
    print_json(Json{{"filename", file}, {"offset", offset}, {"done", what}});
    return;
  }
  say(ctx, fmt::format("{}: {} at offset {}", file, what, offset));
}

void show_import(const Context& ctx, const std::string& package, const image::ova::ImportResult& r) {
  if (ctx.json) {
    Json machines = Json::array();
    for (const auto& m : r.machines) {
      Json disks = Json::array();
      for (const auto& d : m.disks)
        disks.push_back(Json{{"path", d.path}, {"format", d.format}, {"virtual-size", d.virtual_size}});
      machines.push_back(Json{{"name", m.name},
                              {"config", m.config},
                              {"cpus", m.cpus},
                              {"memory", m.memory ? Json(m.memory) : Json(nullptr)},
                              {"disks", disks},
                              {"nics", m.nics}});
    }
    print_json(Json{{"package", package}, {"machines", machines}});
    return;
  }
  for (const auto& m : r.machines) {
    std::string disks;
    for (const auto& d : m.disks)
      disks += fmt::format("{}{} ({})", disks.empty() ? "" : ", ", d.path, format_size(d.virtual_size));
    say(ctx,
        fmt::format("imported {}: {} CPU(s), {} memory, {} NIC(s), disks: {}; configuration {}", m.name, m.cpus,
                    m.memory ? format_size(m.memory) : "unknown", m.nics, disks.empty() ? "none" : disks, m.config));
  }
}

}  // namespace arche::cli::image_output
