// `arche image ...`: create, info, check, map, compare, convert, commit, rebase,
// resize, measure. Syntax follows qemu-img where it has the same command.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/units.h"
#include "image/format.h"
#include "image/ops/commit.h"
#include "image/ops/compare.h"
#include "image/ops/convert.h"
#include "image/ops/rebase.h"
#include "image/ova/ova_import.h"

namespace arche::cli {

namespace {

using image::BlockDevice;
using image::Extent;
using image::ExtentKind;

std::map<std::string, std::string> merge_options(const std::vector<std::string>& lists) {
  std::map<std::string, std::string> out;
  for (const std::string& list : lists)
    for (auto& [k, v] : image::parse_option_list(list)) out[k] = v;
  return out;
}

// ---- info ---------------------------------------------------------------------

Json info_json(const image::ImageInfo& i) {
  Json j{{"filename", i.filename}, {"format", i.format}, {"virtual-size", i.virtual_size},
         {"actual-size", i.actual_size}, {"dirty-flag", i.dirty}};
  if (i.cluster_size) j["cluster-size"] = i.cluster_size;
  if (i.backing_file) {
    j["backing-filename"] = *i.backing_file;
    if (i.full_backing_file) j["full-backing-filename"] = *i.full_backing_file;
    if (i.backing_format) j["backing-filename-format"] = *i.backing_format;
  }
  if (!i.snapshots.empty()) j["snapshots"] = i.snapshots;
  j["format-specific"] = Json{{"type", i.format}, {"data", i.format_specific}};
  return j;
}

void print_info(const image::ImageInfo& i) {
  std::string out = fmt::format("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\n", i.filename,
                                i.format, format_size(i.virtual_size), i.virtual_size, format_size(i.actual_size));
  if (i.cluster_size) out += fmt::format("cluster_size: {}\n", i.cluster_size);
  if (i.backing_file) {
    out += fmt::format("backing file: {}", *i.backing_file);
    if (i.full_backing_file && *i.full_backing_file != *i.backing_file)
      out += fmt::format(" (actual path: {})", *i.full_backing_file);
    out += "\n";
    out += fmt::format("backing file format: {}\n", i.backing_format.value_or("(not recorded)"));
  }
  if (i.dirty) out += "dirty: yes (not closed cleanly)\n";
  if (!i.snapshots.empty()) {
    out += "Snapshot list:\nID        TAG               VM SIZE                DATE       VM CLOCK\n";
    for (const Json& s : i.snapshots)
      out += fmt::format("{:<9} {:<17} {:>7} {:>20} {:>14}\n", s["id"].get<std::string>(), s["name"].get<std::string>(),
                         format_size(s["vm-state-size"].get<uint64_t>()), s["date-sec"].get<uint64_t>(),
                         s["vm-clock-nsec"].get<uint64_t>());
  }
  if (!i.format_specific.empty()) {
    out += "Format specific information:\n";
    for (const auto& [key, value] : i.format_specific.items())
      out += fmt::format("    {}: {}\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  std::fputs(out.c_str(), stdout);
}

struct InfoArgs {
  std::string file, format;
  bool chain = false, force_share = false;
};

void add_info(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("info", "Show the format, sizes, backing file and snapshots of an image");
  auto a = std::make_shared<InfoArgs>();
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_flag("--backing-chain", a->chain, "Also show every image of the backing chain");
  cmd->add_flag("-U,--force-share", a->force_share, "Read an image another process is writing");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::OpenOptions o;
    o.format = a->format;
    o.open_backing = a->chain;
    o.force_share = a->force_share;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    std::vector<image::ImageInfo> infos;
    for (BlockDevice* d = dev.get(); d; d = a->chain ? d->backing() : nullptr) infos.push_back(d->info());
    if (ctx.json) {
      if (!a->chain) {
        print_json(info_json(infos[0]));
      } else {
        Json all = Json::array();
        for (const auto& i : infos) all.push_back(info_json(i));
        print_json(all);
      }
      return;
    }
    for (size_t k = 0; k < infos.size(); ++k) {
      if (k) std::fputc('\n', stdout);
      print_info(infos[k]);
    }
  });
}

// ---- create -------------------------------------------------------------------

struct CreateArgs {
  std::string format = "qcow2", backing, backing_format, file, size_text;
  std::vector<std::string> options;
  bool overwrite = false;
};

void add_create(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("create", "Create a new image (optionally an overlay on a backing file)");
  auto a = std::make_shared<CreateArgs>();
  cmd->add_option("-f,--format", a->format, "Image format: qcow2 or raw")->capture_default_str();
  cmd->add_option("-b,--backing", a->backing, "Backing file (relative paths are relative to FILE's directory)");
  cmd->add_option("-F,--backing-format", a->backing_format, "Format of the backing file (default: probe and record)");
  cmd->add_option("-o,--options", a->options,
                  "Format options: cluster_size=N, compression_type=zlib|zstd, lazy_refcounts=on|off, "
                  "refcount_bits=N, compat=0.10|1.1")->allow_extra_args(false);
  cmd->add_flag("--overwrite", a->overwrite, "Replace FILE if it exists");
  cmd->add_option("file", a->file, "Image to create")->required();
  cmd->add_option("size", a->size_text, "Virtual size, e.g. 10G (default with -b: the backing file's size)");
  cmd->callback([&ctx, a] {
    image::CreateOptions o;
    o.format = a->format;
    o.backing_file = a->backing;
    o.backing_format = a->backing_format;
    o.options = merge_options(a->options);
    o.overwrite = a->overwrite;
    if (!a->size_text.empty()) o.size = parse_size(a->size_text);
    else if (a->backing.empty()) fail(ErrorCategory::usage, "image create: give a SIZE (or a backing file with -b)");
    image::create_image(a->file, o);
    image::OpenOptions open;
    open.format = a->format;
    open.open_backing = false;
    image::ImageInfo info = image::open_image(a->file, open)->info();
    std::string line = fmt::format("created {} ({}, {})", a->file, info.format, format_size(info.virtual_size));
    if (info.backing_file)
      line += fmt::format(", backing {} ({})", *info.backing_file, info.backing_format.value_or("?"));
    say(ctx, line);
  });
}

// ---- check --------------------------------------------------------------------

struct CheckArgs {
  std::string file, format, repair;
};

void add_check(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("check", "Check an image's metadata for consistency, optionally repairing it");
  auto a = std::make_shared<CheckArgs>();
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_option("-r,--repair", a->repair, "Repair: leaks (safe) or all")->check(CLI::IsMember({"leaks", "all"}));
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 consistent, 2 corruptions remain, 3 only leaked clusters remain.");
  cmd->callback([&ctx, a] {
    std::string fmt_name = a->format.empty() ? image::probe_format(a->file) : a->format;
    image::RepairMode mode = a->repair == "all" ? image::RepairMode::all
                             : a->repair == "leaks" ? image::RepairMode::leaks
                                                 : image::RepairMode::none;
    image::CheckResult r = image::driver_for(fmt_name).check(a->file, mode);
    ctx.exit_code = r.corruptions ? 2 : r.leaks ? 3 : 0;
    if (ctx.json) {
      Json j{{"filename", a->file}, {"format", fmt_name}, {"check-errors", r.check_errors}};
      if (r.supported) {
        j["image-end-offset"] = r.image_end_offset;
        j["total-clusters"] = r.total_clusters;
        j["allocated-clusters"] = r.allocated_clusters;
        j["fragmented-clusters"] = r.fragmented_clusters;
        j["compressed-clusters"] = r.compressed_clusters;
        j["leaks"] = r.leaks;
        j["corruptions"] = r.corruptions;
        j["leaks-fixed"] = r.leaks_fixed;
        j["corruptions-fixed"] = r.corruptions_fixed;
        j["messages"] = r.messages;
      } else {
        j["supported"] = false;
      }
      print_json(j);
      return;
    }
    if (!r.supported) {
      std::printf("%s images have no metadata to check.\n", fmt_name.c_str());
      return;
    }
    for (const std::string& m : r.messages) std::printf("%s\n", m.c_str());
    if (r.leaks_fixed || r.corruptions_fixed)
      std::printf("%sThe following inconsistencies were found and repaired:\n    %llu leaked clusters\n    %llu "
                  "corruptions\n\n",
                  r.messages.empty() ? "" : "\n", static_cast<unsigned long long>(r.leaks_fixed),
                  static_cast<unsigned long long>(r.corruptions_fixed));
    if (r.corruptions)
      std::printf("\n%llu errors were found on the image.\nData may be corrupted, or further writes to the image may "
                  "corrupt it.\n",
                  static_cast<unsigned long long>(r.corruptions));
    if (r.leaks)
      std::printf("\n%llu leaked clusters were found on the image.\nThis means waste of disk space, but no harm to "
                  "data.\n",
                  static_cast<unsigned long long>(r.leaks));
    if (!r.corruptions && !r.leaks) std::printf("No errors were found on the image.\n");
    if (r.total_clusters) {
      // Like qemu-img: allocation relative to the disk, the rest relative to what is allocated.
      auto pct = [](uint64_t n, uint64_t of) { return of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0; };
      std::printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters\n",
                  static_cast<unsigned long long>(r.allocated_clusters),
                  static_cast<unsigned long long>(r.total_clusters), pct(r.allocated_clusters, r.total_clusters),
                  pct(r.fragmented_clusters, r.allocated_clusters), pct(r.compressed_clusters, r.allocated_clusters));
    }
    std::printf("Image end offset: %llu\n", static_cast<unsigned long long>(r.image_end_offset));
  });
}

// ---- map ----------------------------------------------------------------------

struct MapArgs {
  std::string file, format;
  bool force_share = false;
};

void add_map(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("map", "Show which ranges hold data, zeros or nothing, and in which layer");
  auto a = std::make_shared<MapArgs>();
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_flag("-U,--force-share", a->force_share, "Read an image another process is writing");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::OpenOptions o;
    o.format = a->format;
    o.force_share = a->force_share;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    std::vector<Extent> extents = dev->map();
    if (ctx.json) {
      Json all = Json::array();
      for (const Extent& e : extents) {
        Json j{{"start", e.offset},
               {"length", e.length},
               {"depth", e.depth},
               {"present", e.kind != ExtentKind::unallocated},
               {"zero", e.kind != ExtentKind::data},
               {"data", e.kind == ExtentKind::data},
               {"compressed", e.compressed},
               {"kind", image::to_string(e.kind)}};
        if (e.host_offset) j["offset"] = *e.host_offset;
        if (e.kind != ExtentKind::unallocated) j["file"] = e.file;
        all.push_back(std::move(j));
      }
      print_json(all);
      return;
    }
    std::printf("%-18s %-18s %-12s %-5s %-18s %s\n", "Offset", "Length", "Kind", "Depth", "Mapped to", "File");
    for (const Extent& e : extents) {
      std::string mapped = e.host_offset ? fmt::format("0x{:x}", *e.host_offset) : (e.compressed ? "compressed" : "-");
      std::printf("%-18s %-18s %-12s %-5d %-18s %s\n", fmt::format("0x{:x}", e.offset).c_str(),
                  fmt::format("0x{:x}", e.length).c_str(), image::to_string(e.kind), e.depth, mapped.c_str(),
                  e.kind == ExtentKind::unallocated ? "" : e.file.c_str());
    }
  });
}

// ---- compare ------------------------------------------------------------------

struct CompareArgs {
  std::string a, b, format_a, format_b;
  bool strict = false, force_share = false;
};

void add_compare(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("compare", "Compare the content of two images (exit 0 equal, 1 different)");
  auto args = std::make_shared<CompareArgs>();
  cmd->add_option("a", args->a, "First image")->required();
  cmd->add_option("b", args->b, "Second image")->required();
  cmd->add_option("-f,--format-a", args->format_a, "Format of the first image (default: probe)");
  cmd->add_option("-F,--format-b", args->format_b, "Format of the second image (default: probe)");
  cmd->add_flag("-s,--strict", args->strict, "Different sizes count as a difference");
  cmd->add_flag("-U,--force-share", args->force_share, "Read images another process is writing");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, args] {
    image::CompareOptions o;
    o.format_a = args->format_a;
    o.format_b = args->format_b;
    o.strict = args->strict;
    o.force_share = args->force_share;
    image::CompareResult r = image::compare(args->a, args->b, o);
    ctx.exit_code = r.equal ? 0 : 1;
    if (ctx.json) {
      Json j{{"identical", r.equal}};
      if (r.first_difference) j["first-difference"] = *r.first_difference;
      if (!r.equal) j["reason"] = r.reason;
      print_json(j);
      return;
    }
    if (!ctx.quiet) std::printf("%s\n", r.equal ? "Images are identical." : r.reason.c_str());
  });
}

// ---- convert ------------------------------------------------------------------

struct ConvertArgs {
  std::string source_format, target_format, src, dst;
  std::vector<std::string> options;
  bool compress = false, sync = false, overwrite = false, force_share = false;
  unsigned threads = 0;
};

void add_convert(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("convert", "Copy an image (with its backing chain) into a new image of any format");
  auto a = std::make_shared<ConvertArgs>();
  cmd->add_option("-f,--format", a->source_format, "Source format (default: probe)");
  cmd->add_option("-O,--output-format", a->target_format, "Target format: qcow2 or raw")->required();
  cmd->add_flag("-c,--compress", a->compress, "Store clusters compressed (qcow2; zlib unless -o compression_type=zstd)");
  cmd->add_option("-o,--options", a->options, "Target format options, as for image create")->allow_extra_args(false);
  cmd->add_option("-m,--threads", a->threads, "Worker threads (default: one per core)");
  cmd->add_flag("--sync", a->sync, "fsync the target before it appears under its name");
  cmd->add_flag("--overwrite", a->overwrite, "Replace DST if it exists");
  cmd->add_flag("-U,--force-share", a->force_share, "Read a source another process is writing");
  cmd->add_option("src", a->src, "Source image")->required();
  cmd->add_option("dst", a->dst, "Target image")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::ConvertOptions o;
    o.source_format = a->source_format;
    o.target.format = a->target_format;
    o.target.options = merge_options(a->options);
    o.target.overwrite = a->overwrite;
    o.compress = a->compress;
    o.threads = a->threads;
    o.durable = a->sync;
    o.force_share = a->force_share;
    image::ConvertStats s = image::convert(a->src, a->dst, o);
    if (ctx.json) {
      print_json(Json{{"source", a->src},
                      {"target", a->dst},
                      {"format", image::driver_for(a->target_format).name()},
                      {"virtual-size", s.virtual_size},
                      {"bytes-read", s.bytes_read},
                      {"bytes-written", s.bytes_written},
                      {"file-bytes", s.file_bytes},
                      {"seconds", s.seconds}});
      return;
    }
    say(ctx, fmt::format("converted {} -> {} ({}): {} virtual, {} of data, {} on disk, in {:.2f} s", a->src, a->dst,
                         image::driver_for(a->target_format).name(), format_size(s.virtual_size),
                         format_size(s.bytes_written), format_size(s.file_bytes), s.seconds));
  });
}

// ---- commit, rebase -----------------------------------------------------------

struct CommitArgs {
  std::string file, format, base;
  bool keep = false;
};

void add_commit(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("commit", "Write an overlay's changes into its backing file");
  auto a = std::make_shared<CommitArgs>();
  cmd->add_option("-b,--base", a->base, "Commit into this image of the chain (default: the immediate backing file)");
  cmd->add_flag("-d,--keep", a->keep, "Keep the overlay's data (do not empty it)");
  cmd->add_option("-f,--format", a->format, "Overlay format (default: probe)");
  cmd->add_option("overlay", a->file, "The overlay")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::CommitOptions o;
    o.base = a->base;
    o.keep_overlay = a->keep;
    o.format = a->format;
    image::CommitStats s = image::commit(a->file, o);
    if (ctx.json) {
      print_json(Json{{"overlay", a->file}, {"base", s.base}, {"bytes-copied", s.bytes_copied}, {"bytes-zeroed", s.bytes_zeroed}});
      return;
    }
    say(ctx, fmt::format("Image committed into {} ({} copied, {} zeroed).", s.base, format_size(s.bytes_copied),
                         format_size(s.bytes_zeroed)));
  });
}

struct RebaseArgs {
  std::string file, format, backing, backing_format;
  bool unsafe = false;
};

void add_rebase(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("rebase", "Change an overlay's backing file, keeping its content (unless -u)");
  auto a = std::make_shared<RebaseArgs>();
  cmd->add_option("-b,--backing", a->backing, "New backing file (\"\" for none)")->required();
  cmd->add_option("-F,--backing-format", a->backing_format, "Format of the new backing file (default: probe)");
  cmd->add_flag("-u,--unsafe", a->unsafe, "Only rewrite the backing file name; do not compare content");
  cmd->add_option("-f,--format", a->format, "Overlay format (default: probe)");
  cmd->add_option("overlay", a->file, "The overlay")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::RebaseOptions o;
    o.backing = a->backing;
    o.backing_format = a->backing_format;
    o.unsafe = a->unsafe;
    o.format = a->format;
    image::RebaseStats s = image::rebase(a->file, o);
    if (ctx.json) {
      print_json(Json{{"overlay", a->file}, {"backing", a->backing}, {"bytes-copied", s.bytes_copied}});
      return;
    }
    say(ctx, a->backing.empty() ? fmt::format("{} has no backing file now ({} copied in).", a->file, format_size(s.bytes_copied))
                             : fmt::format("{} is now backed by {} ({} copied in).", a->file, a->backing,
                                           format_size(s.bytes_copied)));
  });
}

// ---- resize, measure ----------------------------------------------------------

struct ResizeArgs {
  std::string file, format, size_text;
  bool shrink = false;
};

void add_resize(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("resize", "Change an image's virtual size (SIZE, +SIZE or -SIZE)");
  auto a = std::make_shared<ResizeArgs>();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_flag("--shrink", a->shrink, "Allow making the image smaller (data beyond the new end is lost)");
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("size", a->size_text, "New size, or +N / -N relative to the current size")->required();
  cmd->callback([&ctx, a] {
    image::OpenOptions o;
    o.writable = true;
    o.format = a->format;
    o.open_backing = true;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    uint64_t current = dev->size(), target;
    if (a->size_text[0] == '+') {
      target = current + parse_size(a->size_text.substr(1));
    } else if (a->size_text[0] == '-') {
      uint64_t delta = parse_size(a->size_text.substr(1));
      if (delta > current) fail(ErrorCategory::usage, "cannot shrink {} by more than its size", a->file);
      target = current - delta;
    } else {
      target = parse_size(a->size_text);
    }
    if (target < current && !a->shrink)
      fail(ErrorCategory::usage, "shrinking {} from {} to {} loses data beyond the new end; pass --shrink to do it", a->file,
           format_size(current), format_size(target));
    dev->resize(target);
    dev.reset();
    say(ctx, fmt::format("Image resized to {} ({} bytes).", format_size(target), target));
  });
}

struct MeasureArgs {
  std::string file, format, target_format, size_text;
  std::vector<std::string> options;
};

void add_measure(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("measure", "How much space a conversion to a format needs");
  auto a = std::make_shared<MeasureArgs>();
  cmd->add_option("-O,--output-format", a->target_format, "Target format")->required();
  cmd->add_option("-o,--options", a->options, "Target format options, as for image create")->allow_extra_args(false);
  cmd->add_option("-f,--format", a->format, "Source format (default: probe)");
  cmd->add_option("--size", a->size_text, "Measure an empty image of this size instead of a source");
  cmd->add_option("src", a->file, "Source image");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    if (a->file.empty() == a->size_text.empty()) fail(ErrorCategory::usage, "image measure: give either SRC or --size");
    image::CreateOptions o;
    o.format = a->target_format;
    o.options = merge_options(a->options);
    std::unique_ptr<BlockDevice> source;
    uint64_t size;
    if (!a->file.empty()) {
      image::OpenOptions open;
      open.format = a->format;
      source = image::open_image(a->file, open);
      size = source->size();
    } else {
      size = parse_size(a->size_text);
    }
    image::Measurement m = image::driver_for(a->target_format).measure(source.get(), size, o);
    if (ctx.json) {
      print_json(Json{{"required", m.required}, {"fully-allocated", m.fully_allocated}});
      return;
    }
    std::printf("required size: %llu\nfully allocated size: %llu\n", static_cast<unsigned long long>(m.required),
                static_cast<unsigned long long>(m.fully_allocated));
  });
}

// ---- write, read --------------------------------------------------------------

struct WriteArgs {
  std::string file, format, offset_text, length_text, from, pattern;
  bool zeroes = false, discard = false;
};

void add_write(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("write", "Write bytes into an image at an offset (a file, a pattern, zeroes)");
  auto a = std::make_shared<WriteArgs>();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("offset", a->offset_text, "Byte offset in the virtual disk")->required();
  auto* from = cmd->add_option("--from", a->from, "Write the content of this file");
  auto* pattern = cmd->add_option("--pattern", a->pattern, "Write this byte value (e.g. 0xab) --length times");
  auto* zeroes = cmd->add_flag("--zeroes", a->zeroes, "Make --length bytes read as zeros");
  auto* discard = cmd->add_flag("--discard", a->discard, "Discard --length bytes");
  from->excludes(pattern)->excludes(zeroes)->excludes(discard);
  pattern->excludes(zeroes)->excludes(discard);
  zeroes->excludes(discard);
  cmd->add_option("--length", a->length_text, "Number of bytes (default with --from: the file's size)");
  cmd->callback([&ctx, a] {
    image::OpenOptions o;
    o.writable = true;
    o.format = a->format;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    const uint64_t offset = parse_size(a->offset_text, "offset");
    std::optional<uint64_t> length;
    if (!a->length_text.empty()) length = parse_size(a->length_text, "length");
    std::string what;
    if (!a->from.empty()) {
      File src = File::open(a->from, OpenMode::read_only);
      uint64_t n = length.value_or(src.size());
      std::vector<uint8_t> buf(std::min<uint64_t>(n, 4 * MiB));
      for (uint64_t done = 0; done < n;) {
        uint64_t m = std::min<uint64_t>(buf.size(), n - done);
        src.read_exact(done, std::span(buf.data(), m));
        dev->write(offset + done, std::span(buf.data(), m));
        done += m;
      }
      what = fmt::format("wrote {} bytes of {}", n, a->from);
    } else {
      if (!length) fail(ErrorCategory::usage, "image write: --length is required without --from");
      if (a->zeroes) {
        dev->write_zeroes(offset, *length, false);
        what = fmt::format("zeroed {} bytes", *length);
      } else if (a->discard) {
        dev->discard(offset, *length);
        what = fmt::format("discarded {} bytes", *length);
      } else {
        if (a->pattern.empty()) fail(ErrorCategory::usage, "image write: give --from, --pattern, --zeroes or --discard");
        char* end = nullptr;
        unsigned long value = std::strtoul(a->pattern.c_str(), &end, 0);
        if (a->pattern.empty() || *end != '\0' || value > 255)
          fail(ErrorCategory::usage, "image write: --pattern must be a byte value, 0 to 255 or 0x00 to 0xff (got '{}')",
               a->pattern);
        std::vector<uint8_t> buf(std::min<uint64_t>(*length, 4 * MiB), static_cast<uint8_t>(value));
        for (uint64_t done = 0; done < *length;) {
          uint64_t m = std::min<uint64_t>(buf.size(), *length - done);
          dev->write(offset + done, std::span(buf.data(), m));
          done += m;
        }
        what = fmt::format("wrote {} bytes of 0x{:02x}", *length, value);
      }
    }
    dev->flush();
    say(ctx, fmt::format("{}: {} at offset {}", a->file, what, offset));
  });
}

struct ReadArgs {
  std::string file, format, offset_text, length_text, to;
  bool force_share = false;
};

void add_read(CLI::App& group, Context&) {
  auto* cmd = group.add_subcommand("read", "Copy bytes of the virtual disk to stdout or a file");
  auto a = std::make_shared<ReadArgs>();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("offset", a->offset_text, "Byte offset in the virtual disk")->required();
  cmd->add_option("length", a->length_text, "Number of bytes")->required();
  cmd->add_option("--to", a->to, "Write into this file instead of stdout");
  cmd->add_flag("-U,--force-share", a->force_share, "Read an image another process is writing");
  cmd->callback([a] {
    image::OpenOptions o;
    o.format = a->format;
    o.force_share = a->force_share;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    const uint64_t offset = parse_size(a->offset_text, "offset"), length = parse_size(a->length_text, "length");
    std::optional<File> out;
    if (!a->to.empty()) out = File::open(a->to, OpenMode::create_truncate);
    std::vector<uint8_t> buf(std::min<uint64_t>(length, 4 * MiB));
    for (uint64_t done = 0; done < length;) {
      uint64_t m = std::min<uint64_t>(buf.size(), length - done);
      dev->read(offset + done, std::span(buf.data(), m));
      if (out) {
        out->write_all(done, std::span(buf.data(), m));
      } else if (std::fwrite(buf.data(), 1, m, stdout) != m) {
        fail(ErrorCategory::io, "write to stdout failed");
      }
      done += m;
    }
    std::fflush(stdout);
  });
}

// ---- import -------------------------------------------------------------------

struct ImportArgs {
  std::string package, dir, format = "qcow2";
  std::vector<std::string> options;
  bool overwrite = false;
  unsigned threads = 0;
};

void add_import(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "import", "Import a VM from an OVA (or an .ovf with its disks): convert its disks into DIR, write DIR/NAME.toml");
  auto a = std::make_shared<ImportArgs>();
  cmd->add_option("-O,--output-format", a->format, "Format of the imported disks")->capture_default_str();
  cmd->add_option("-o,--options", a->options, "Disk format options, as for image create")->allow_extra_args(false);
  cmd->add_option("-m,--threads", a->threads, "Worker threads (default: one per core)");
  cmd->add_flag("--overwrite", a->overwrite, "Replace disks and configurations that exist in DIR");
  cmd->add_option("package", a->package, "The .ova archive or .ovf descriptor")->required();
  cmd->add_option("dir", a->dir, "Directory for the disks and the VM configuration (created if missing)")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::ova::ImportOptions o;
    o.format = a->format;
    o.options = merge_options(a->options);
    o.overwrite = a->overwrite;
    o.threads = a->threads;
    image::ova::ImportResult r = image::ova::import_package(a->package, a->dir, o);
    if (ctx.json) {
      Json machines = Json::array();
      for (const auto& m : r.machines) {
        Json disks = Json::array();
        for (const auto& d : m.disks) disks.push_back(Json{{"path", d.path}, {"format", d.format}, {"virtual-size", d.virtual_size}});
        machines.push_back(Json{{"name", m.name}, {"config", m.config}, {"cpus", m.cpus}, {"memory", m.memory},
                                {"disks", disks}, {"nics", m.nics}});
      }
      print_json(Json{{"package", a->package}, {"machines", machines}});
      return;
    }
    for (const auto& m : r.machines) {
      std::string disks;
      for (const auto& d : m.disks)
        disks += fmt::format("{}{} ({})", disks.empty() ? "" : ", ", d.path, format_size(d.virtual_size));
      say(ctx, fmt::format("imported {}: {} CPU(s), {} memory, {} NIC(s), disks: {}; configuration {}", m.name, m.cpus,
                           m.memory ? format_size(m.memory) : "unknown", m.nics, disks.empty() ? "none" : disks,
                           m.config));
    }
  });
}

}  // namespace

void register_image_commands(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand("image", "Disk images: create, inspect, check, convert, commit, rebase, resize, import");
  group->require_subcommand(1);
  add_create(*group, ctx);
  add_info(*group, ctx);
  add_check(*group, ctx);
  add_map(*group, ctx);
  add_compare(*group, ctx);
  add_convert(*group, ctx);
  add_commit(*group, ctx);
  add_rebase(*group, ctx);
  add_resize(*group, ctx);
  add_measure(*group, ctx);
  add_write(*group, ctx);
  add_read(*group, ctx);
  add_import(*group, ctx);
}

}  // namespace arche::cli
