// `arche image ...`: create, info, check, map, compare, convert, commit, rebase,
// resize, measure, write, read, import. Syntax follows qemu-img where it has the
// same command. This file parses arguments and calls the image library; what the
// commands print is in cli/image_output.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/image_output.h"
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
namespace out = image_output;

constexpr uint64_t kCopyBuffer = 4 * MiB;

// "-o a=1 -o b=2" and "-o a=1,b=2" alike.
std::map<std::string, std::string> merge_options(const std::vector<std::string>& lists) {
  std::map<std::string, std::string> merged;
  for (const std::string& list : lists)
    for (auto& [k, v] : image::parse_option_list(list)) merged[k] = v;
  return merged;
}

// `-o help` (or `-o ?`), as qemu-img: list the format's creation options instead.
bool wants_option_help(const std::vector<std::string>& lists) {
  return std::any_of(lists.begin(), lists.end(), [](const std::string& l) { return l == "help" || l == "?"; });
}

void require_argument(const std::string& value, const std::string& command, const std::string& name) {
  if (value.empty())
    fail(ErrorCategory::usage, "image {}: {} is missing (see: arche image {} --help)", command, name, command);
}

const char* const kFormatOptionsHelp =
    "Format options KEY=VALUE[,...]; `-o help` lists those of the format (docs/image-formats.md)";

// ---- info ---------------------------------------------------------------------

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
    o.info_only = true;  // encrypted images are described, not read
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    std::vector<image::ImageInfo> infos;
    for (BlockDevice* d = dev.get(); d; d = a->chain ? d->backing() : nullptr) infos.push_back(d->info());
    out::show_info(ctx, infos, a->chain);
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
  cmd->add_option("-f,--format", a->format, "Image format: qcow2, raw, vmdk, vpc (VHD), vhdx or vdi")
      ->capture_default_str();
  cmd->add_option("-b,--backing", a->backing, "Backing file (relative paths are relative to FILE's directory)");
  cmd->add_option("-F,--backing-format", a->backing_format, "Format of the backing file (default: probe and record)");
  cmd->add_option("-o,--options", a->options, kFormatOptionsHelp)->allow_extra_args(false);
  cmd->add_flag("--overwrite", a->overwrite, "Replace FILE if it exists");
  cmd->add_option("file", a->file, "Image to create");
  cmd->add_option("size", a->size_text, "Virtual size, e.g. 10G (default with -b: the backing file's size)");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    if (wants_option_help(a->options)) return out::show_create_options(ctx, image::driver_for(a->format));
    require_argument(a->file, "create", "FILE");
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
    out::show_created(ctx, a->file, image::open_image(a->file, open)->info());
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
    std::string format = a->format.empty() ? image::probe_format(a->file) : a->format;
    image::RepairMode mode = a->repair == "all"     ? image::RepairMode::all
                             : a->repair == "leaks" ? image::RepairMode::leaks
                                                    : image::RepairMode::none;
    ctx.if_interrupted = mode == image::RepairMode::none ? a->file + " left as it was (the check was not finished)"
                                                         : a->file + " partly repaired; run the check again";
    image::CheckResult r = image::driver_for(format).check(a->file, mode);
    ctx.exit_code = r.corruptions ? 2 : r.leaks ? 3 : 0;
    out::show_check(ctx, a->file, format, r);
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
    out::show_map(ctx, image::open_image(a->file, o)->map());
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
    ctx.if_interrupted = "nothing was changed (the comparison was not finished)";
    image::CompareResult r = image::compare(args->a, args->b, o);
    ctx.exit_code = r.equal ? 0 : 1;
    out::show_compare(ctx, r);
  });
}

// ---- convert ------------------------------------------------------------------

struct ConvertArgs {
  std::string source_format, target_format = "raw", src, dst;
  std::vector<std::string> options;
  bool compress = false, sync = false, overwrite = false, force_share = false, no_reflink = false;
  unsigned threads = 0;
};

void add_convert(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("convert", "Copy an image (with its backing chain) into a new image of any format");
  auto a = std::make_shared<ConvertArgs>();
  cmd->add_option("-f,--format", a->source_format, "Source format (default: probe)");
  cmd->add_option("-O,--output-format", a->target_format, "Target format: qcow2, raw, vmdk, vpc (VHD), vhdx or vdi")
      ->capture_default_str();
  cmd->add_flag("-c,--compress", a->compress,
                "Store clusters compressed (qcow2; zlib unless -o compression_type=zstd)");
  cmd->add_option("-o,--options", a->options, kFormatOptionsHelp)->allow_extra_args(false);
  cmd->add_option("-m,--threads", a->threads, "Worker threads (default: one per core)");
  cmd->add_flag("--sync", a->sync, "fsync the target before it appears under its name");
  cmd->add_flag("--overwrite", a->overwrite, "Replace DST if it exists");
  cmd->add_flag("-U,--force-share", a->force_share, "Read a source another process is writing");
  cmd->add_flag("--no-reflink", a->no_reflink,
                "Copy the data even where the file system could share it with the source (XFS, btrfs)");
  cmd->add_option("src", a->src, "Source image");
  cmd->add_option("dst", a->dst, "Target image");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    if (wants_option_help(a->options)) return out::show_create_options(ctx, image::driver_for(a->target_format));
    require_argument(a->src, "convert", "SRC");
    require_argument(a->dst, "convert", "DST");
    image::ConvertOptions o;
    o.source_format = a->source_format;
    o.target.format = a->target_format;
    o.target.options = merge_options(a->options);
    o.target.overwrite = a->overwrite;
    o.compress = a->compress;
    o.threads = a->threads;
    o.durable = a->sync;
    o.force_share = a->force_share;
    o.reflink = !a->no_reflink;
    ctx.if_interrupted =
        fmt::format("{} left as it was, nothing written to {} (its temporary file is removed)", a->src, a->dst);
    image::ConvertStats s = image::convert(a->src, a->dst, o);
    out::show_convert(ctx, a->src, a->dst, image::driver_for(a->target_format).name(), s);
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
    ctx.if_interrupted = fmt::format(
        "{} left as it was, still holding all its data (its backing file may hold part of it; commit again to finish)",
        a->file);
    out::show_commit(ctx, a->file, image::commit(a->file, o));
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
    ctx.if_interrupted = fmt::format("{} still on its old backing file, its content unchanged", a->file);
    out::show_rebase(ctx, a->file, a->backing, image::rebase(a->file, o));
  });
}

// ---- resize, measure ----------------------------------------------------------

struct ResizeArgs {
  std::string file, format, size_text;
  bool shrink = false;
};

uint64_t resized(const std::string& file, const std::string& text, uint64_t current) {
  if (text[0] == '+') return current + parse_size(text.substr(1));
  if (text[0] != '-') return parse_size(text);
  uint64_t delta = parse_size(text.substr(1));
  if (delta > current) fail(ErrorCategory::usage, "cannot shrink {} by more than its size", file);
  return current - delta;
}

void add_resize(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand("resize", "Change an image's virtual size (SIZE, +SIZE or -SIZE)");
  auto a = std::make_shared<ResizeArgs>();
  cmd->add_option("-f,--format", a->format, "Image format (default: probe)");
  cmd->add_flag("--shrink", a->shrink, "Allow making the image smaller (data beyond the new end is lost)");
  cmd->add_option("file", a->file, "Image file")->required();
  cmd->add_option("size", a->size_text, "New size, or +N / -N relative to the current size")->required();
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    image::OpenOptions o;
    o.writable = true;
    o.format = a->format;
    o.open_backing = true;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    const uint64_t current = dev->size(), target = resized(a->file, a->size_text, current);
    if (target < current && !a->shrink)
      fail(ErrorCategory::usage, "shrinking {} from {} to {} loses data beyond the new end; pass --shrink to do it",
           a->file, format_size(current), format_size(target));
    dev->resize(target);
    dev.reset();
    out::show_resize(ctx, a->file, current, target);
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
  cmd->add_option("-o,--options", a->options, kFormatOptionsHelp)->allow_extra_args(false);
  cmd->add_option("-f,--format", a->format, "Source format (default: probe)");
  cmd->add_option("--size", a->size_text, "Measure an empty image of this size instead of a source");
  cmd->add_option("src", a->file, "Source image");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    const image::FormatDriver& driver = image::driver_for(a->target_format);
    if (wants_option_help(a->options)) return out::show_create_options(ctx, driver);
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
    out::show_measure(ctx, driver.measure(source.get(), size, o));
  });
}

// ---- write, read --------------------------------------------------------------

struct WriteArgs {
  std::string file, format, offset_text, length_text, from, pattern;
  bool zeroes = false, discard = false;
};

uint8_t parse_pattern(const std::string& text) {
  char* end = nullptr;
  unsigned long value = std::strtoul(text.c_str(), &end, 0);
  if (text.empty() || *end != '\0' || value > 255)
    fail(ErrorCategory::usage, "image write: --pattern must be a byte value, 0 to 255 or 0x00 to 0xff (got '{}')",
         text);
  return static_cast<uint8_t>(value);
}

// Writes `length` bytes at `offset`, taking them chunk by chunk from `fill`.
void write_chunks(BlockDevice& dev, uint64_t offset, uint64_t length,
                  const std::function<void(uint64_t done, std::span<uint8_t> chunk)>& fill) {
  std::vector<uint8_t> buf(std::min(length, kCopyBuffer));
  for (uint64_t done = 0; done < length;) {
    std::span<uint8_t> chunk(buf.data(), std::min<uint64_t>(buf.size(), length - done));
    fill(done, chunk);
    dev.write(offset + done, chunk);
    done += chunk.size();
  }
}

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
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    const uint64_t offset = parse_size(a->offset_text, "offset");
    std::optional<uint64_t> length;
    if (!a->length_text.empty()) length = parse_size(a->length_text, "length");
    if (a->from.empty() && !length) fail(ErrorCategory::usage, "image write: --length is required without --from");
    if (a->from.empty() && !a->zeroes && !a->discard && a->pattern.empty())
      fail(ErrorCategory::usage, "image write: give --from, --pattern, --zeroes or --discard");
    image::OpenOptions o;
    o.writable = true;
    o.format = a->format;
    std::unique_ptr<BlockDevice> dev = image::open_image(a->file, o);
    std::string what;
    if (!a->from.empty()) {
      File src = File::open(a->from, OpenMode::read_only);
      uint64_t n = length.value_or(src.size());
      write_chunks(*dev, offset, n, [&](uint64_t done, std::span<uint8_t> chunk) { src.read_exact(done, chunk); });
      what = fmt::format("wrote {} bytes of {}", n, a->from);
    } else if (a->zeroes) {
      dev->write_zeroes(offset, *length, false);
      what = fmt::format("zeroed {} bytes", *length);
    } else if (a->discard) {
      dev->discard(offset, *length);
      what = fmt::format("discarded {} bytes", *length);
    } else {
      const uint8_t value = parse_pattern(a->pattern);
      write_chunks(*dev, offset, *length,
                   [&](uint64_t, std::span<uint8_t> chunk) { std::fill(chunk.begin(), chunk.end(), value); });
      what = fmt::format("wrote {} bytes of 0x{:02x}", *length, value);
    }
    dev->flush();
    out::show_written(ctx, a->file, what, offset);
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
    // Checked before anything is written: a range past the end gives no partial output.
    if (offset > dev->size() || length > dev->size() - offset)
      fail(ErrorCategory::usage, "image read: bytes {} to {} ({} at offset {}) lie beyond the end of {} ({} bytes)",
           offset, offset + length, format_size(length), offset, a->file, dev->size());
    std::optional<File> target;
    if (!a->to.empty()) target = File::open(a->to, OpenMode::create_truncate);
    std::vector<uint8_t> buf(std::min(length, kCopyBuffer));
    for (uint64_t done = 0; done < length;) {
      std::span<uint8_t> chunk(buf.data(), std::min<uint64_t>(buf.size(), length - done));
      dev->read(offset + done, chunk);
      if (target) target->write_all(done, chunk);
      else if (std::fwrite(chunk.data(), 1, chunk.size(), stdout) != chunk.size())
        fail(ErrorCategory::io, "write to stdout failed");
      done += chunk.size();
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
    ctx.if_interrupted = fmt::format("{} left as it was; disks already converted stay in {}", a->package, a->dir);
    out::show_import(ctx, a->package, image::ova::import_package(a->package, a->dir, o));
  });
}

}  // namespace

void register_image_commands(CLI::App& app, Context& ctx) {
  CLI::App* group =
      app.add_subcommand("image", "Disk images: create, inspect, check, convert, commit, rebase, resize, import; list and extract the files inside");
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
