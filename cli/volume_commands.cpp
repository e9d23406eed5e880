// `arche image ls` and `arche image extract`: the partitions, volumes and files
// inside a disk image or block device (volume/). The parsing runs in the volume
// sandbox (volume/sandbox.h): started first, before anything is opened. This
// file parses arguments and reads the tree; what is printed is in
// cli/volume_output.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/volume_output.h"
#include "core/error.h"
#include "image/format.h"
#include "volume/extract.h"
#include "volume/listing.h"
#include "volume/sandbox.h"
#include "volume/volume_path.h"

namespace arche::cli {

namespace {

namespace out = volume_output;

struct Source {
  std::string file, format;
  bool force_share = false;
};

void add_source_options(CLI::App* cmd, Source& s) {
  cmd->add_option("file", s.file, "Disk image (any format) or block device")->required();
  cmd->add_option("-f,--format", s.format, "Image format (default: probe)");
  cmd->add_flag("-U,--force-share", s.force_share, "Read an image another process is writing");
}

// The sandbox first (it is a copy of this process), then the image, then the tree.
// Ctrl-C unwinds (main installs the handlers): temporary files go, the child is stopped.
std::unique_ptr<volume::Tree> open_tree(const Source& s) {
  std::unique_ptr<volume::Sandbox> sandbox = volume::Sandbox::start();
  image::OpenOptions o;
  o.format = s.format;
  o.force_share = s.force_share;
  std::shared_ptr<image::BlockDevice> device = image::open_image(s.file, o);
  std::vector<volume::Disk> disks{{boost::filesystem::path(s.file).filename().string(), device}};
  return sandbox->explore(std::move(disks));
}

// ---- ls -------------------------------------------------------------------------

struct LsArgs {
  Source source;
  std::string path;
};

void list_volumes(const Context& ctx, volume::Tree& tree, const std::string& file) {
  const auto& volumes = tree.volumes();
  std::vector<const volume::Filesystem*> opened(volumes.size(), nullptr);
  std::vector<std::string> open_errors(volumes.size());
  for (size_t i = 0; i < volumes.size(); ++i) {
    if (!volumes[i].browsable) continue;
    try {
      opened[i] = &tree.filesystem(i);
    } catch (const Error& e) {
      if (e.category() == ErrorCategory::interrupted) throw;
      open_errors[i] = e.what();
    }
  }
  out::show_volumes(ctx, tree, file, opened, open_errors);
}

void list_path(const Context& ctx, volume::Tree& tree, const std::string& file, const std::string& address) {
  volume::Location loc = volume::resolve(tree, 0, address);
  volume::Filesystem& fs = tree.filesystem(loc.volume);
  auto [directory, parent, entries] = volume::list_path(fs, loc.path);
  const bool ntfs = fs.type() == "ntfs";
  std::vector<out::ListedEntry> listed;
  for (volume::DirEntry& e : entries) {
    out::ListedEntry l{std::move(e), {}, {}, {}};
    l.path = parent == "/" ? "/" + l.entry.name : parent + "/" + l.entry.name;
    if (l.entry.stat.type == volume::FileType::symlink) {
      try {
        l.target = fs.readlink(l.path);
      } catch (const Error& err) {
        if (err.category() == ErrorCategory::interrupted) throw;
        l.target = fmt::format("? ({})", err.what());
      }
    }
    if (ctx.json && ntfs && l.entry.stat.type == volume::FileType::regular) l.streams = fs.streams(l.path);
    listed.push_back(std::move(l));
  }
  out::show_listing(ctx, file, address, volume::volume_address(tree.volumes()[loc.volume]), fs.type(),
                    directory, listed);
}

void add_ls(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "ls", "List the partitions, volume groups and file systems of a disk, or a directory inside one");
  auto a = std::make_shared<LsArgs>();
  add_source_options(cmd, a->source);
  cmd->add_option("path", a->path,
                  "p1/DIR, VG/LV/DIR, or /DIR for a whole-disk file system (without: the volumes)");
  add_json_flag(cmd, ctx);
  cmd->callback([&ctx, a] {
    std::unique_ptr<volume::Tree> tree = open_tree(a->source);
    if (a->path.empty())
      list_volumes(ctx, *tree, a->source.file);
    else
      list_path(ctx, *tree, a->source.file, a->path);
  });
}

// ---- extract ------------------------------------------------------------------------

struct ExtractArgs {
  Source source;
  std::vector<std::string> paths;
  std::string to;
  bool overwrite = false, sync = false;
};

void add_extract(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "extract", "Copy files or directories out of a disk image, with their mode, owner and times");
  auto a = std::make_shared<ExtractArgs>();
  add_source_options(cmd, a->source);
  cmd->add_option("path", a->paths, "p1/home/kunde/a.txt, VG/LV/DIR, /DIR; p1 or / alone: everything")->required();
  cmd->add_option("--to", a->to, "Directory to write into (created if missing)")->required();
  cmd->add_flag("--overwrite", a->overwrite, "Replace files that exist in DIR and merge into its directories");
  cmd->add_flag("--sync", a->sync, "Make every file durable (fsync) before it appears under its name");
  add_json_flag(cmd, ctx);
  cmd->footer("Exit status: 0 done, 3 done but some entries were skipped (device nodes, unsafe names).");
  cmd->callback([&ctx, a] {
    std::unique_ptr<volume::Tree> tree = open_tree(a->source);
    volume::ExtractOptions o;
    o.overwrite = a->overwrite;
    o.sync = a->sync;
    ctx.if_interrupted = fmt::format(
        "what was extracted so far is in {}; the file being written was removed (extract again with --overwrite)",
        a->to);
    volume::ExtractStats total;
    for (const std::string& p : a->paths) {
      volume::Location loc = volume::resolve(*tree, 0, p);
      volume::ExtractStats s = volume::extract(tree->filesystem(loc.volume), loc.path, a->to, o);
      total.files += s.files;
      total.dirs += s.dirs;
      total.links += s.links;
      total.other += s.other;
      total.bytes += s.bytes;
      total.warnings += s.warnings;
    }
    if (total.warnings) ctx.exit_code = 3;
    out::show_extracted(ctx, a->to, total);
  });
}

}  // namespace

void register_volume_commands(CLI::App& app, Context& ctx) {
  CLI::App* image = app.get_subcommand("image");
  add_ls(*image, ctx);
  add_extract(*image, ctx);
}

}  // namespace arche::cli
