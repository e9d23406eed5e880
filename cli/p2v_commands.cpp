// `arche p2v`: physical servers into VMs (convert/, docs/p2v.md). This file parses
// arguments and calls convert/; what is printed is in cli/p2v_output.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/p2v_output.h"
#include "convert/p2v_image.h"
#include "core/error.h"
#include "core/file.h"
#include "image/format.h"

namespace arche::cli {

namespace {

struct ImageArgs {
  std::vector<std::string> sources;
  std::string to, format = "qcow2";
  bool overwrite = false;
};

// One source: TO is the image. Several (the disks of one server, a VG may span
// them): TO is a directory and each image is named after its source.
std::vector<std::string> target_paths(const ImageArgs& a, const std::string& extension) {
  if (a.sources.size() == 1) return {a.to};
  if (!boost::filesystem::is_directory(a.to))
    fail(ErrorCategory::usage, "with several sources --to names a directory, and {} is not one", a.to);
  std::vector<std::string> out;
  for (const std::string& s : a.sources) {
    const std::string name = boost::filesystem::path(s).stem().string() + "." + extension;
    const std::string path = (boost::filesystem::path(a.to) / name).string();
    if (std::find(out.begin(), out.end(), path) != out.end())
      fail(ErrorCategory::usage, "two sources would both be written to {}", path);
    out.push_back(path);
  }
  return out;
}

bool any_block_device(const convert::Sources& s) {
  for (const std::string& p : s.paths)
    if (File::open(p, OpenMode::read_only).is_block_device()) return true;
  return false;
}

void add_image(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "image", "Copy disks (block devices or images) into new images: used blocks only, free space left as holes");
  auto a = std::make_shared<ImageArgs>();
  cmd->add_option("source", a->sources, "Disks of one server: /dev/sda, or image files")->required();
  cmd->add_option("--to", a->to, "The image (one source) or a directory (several)")->required();
  cmd->add_option("-O,--target-format", a->format, "qcow2 (default), vmdk, vhdx, raw");
  cmd->add_flag("--overwrite", a->overwrite, "Replace images that exist");
  add_json_flag(cmd, ctx);
  cmd->footer("Volumes arche cannot map (damaged, unknown) are copied whole and listed as such.");
  cmd->callback([&ctx, a] {
    // The sandbox first: it is a copy of this process.
    std::unique_ptr<volume::Sandbox> sandbox = volume::Sandbox::start();
    const std::string format = image::driver_for(a->format).name();
    const std::vector<std::string> targets = target_paths(*a, format == "vpc" ? "vhd" : format);
    convert::Sources sources = convert::open_sources(a->sources);
    convert::ImageOptions o;
    o.format = format;
    o.overwrite = a->overwrite;
    ctx.if_interrupted = "no image was written (they appear under their names only when complete)";
    const convert::ConversionResult r = convert::image_disks(*sandbox, sources, targets, o);
    p2v_output::show_imaged(ctx, r, any_block_device(sources));
  });
}

}  // namespace

void register_p2v_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("p2v", "Physical servers into virtual machines: image their disks");
  group->require_subcommand(1);
  add_image(*group, ctx);
}

}  // namespace arche::cli
