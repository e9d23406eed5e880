// `arche p2v`: physical servers into VMs (convert/, docs/p2v.md). This file parses
// arguments and calls convert/; what is printed is in cli/p2v_output.cpp.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <boost/filesystem.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/p2v_output.h"
#include "convert/p2v_image.h"
#include "convert/p2v_network.h"
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

// The token: --token-file, else $ARCHE_P2V_TOKEN (taken out of the environment:
// programs arche starts do not see it), else typed at the terminal. Never a
// command-line argument: it would show in `ps` and the shell history.
convert::Token read_token(const std::string& file) {
  if (!file.empty()) {
    File f = File::open(file, OpenMode::read_only);
    std::string text(f.size(), '\0');
    f.read_exact(0, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return convert::Token::parse(text);
  }
  if (const char* env = std::getenv("ARCHE_P2V_TOKEN")) {
    const std::string text = env;
    ::unsetenv("ARCHE_P2V_TOKEN");
    return convert::Token::parse(text);
  }
  if (::isatty(STDIN_FILENO) == 1) {
    std::fputs("token (as `p2v receive` printed it): ", stderr);
    std::fflush(stderr);
    std::string line;
    if (std::getline(std::cin, line)) return convert::Token::parse(line);
  }
  fail(ErrorCategory::usage, "the receiver's token is needed: --token-file FILE, $ARCHE_P2V_TOKEN, or typed at a terminal");
}

void add_send(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "send", "Stream disks to `p2v receive` on the virtualisation host: used blocks only, encrypted, resumable");
  struct Args {
    std::vector<std::string> sources;
    std::string to, token_file;
    unsigned retries = 10;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("source", a->sources, "Disks of one server: /dev/sda, or image files")->required();
  cmd->add_option("--to", a->to, "HOST:PORT the receiver listens on")->required();
  cmd->add_option("--token-file", a->token_file,
                  "A file holding the one-time token `p2v receive` printed (else $ARCHE_P2V_TOKEN, else it is asked for)");
  cmd->add_option("--retries", a->retries, "Reconnections after a dropped connection (default 10)");
  add_json_flag(cmd, ctx);
  cmd->footer("Run it again after it gave up: the receiver goes on where each disk stopped.");
  cmd->callback([&ctx, a] {
    std::unique_ptr<volume::Sandbox> sandbox = volume::Sandbox::start();
    convert::SendOptions o;
    o.to = convert::parse_host_port(a->to);
    o.token = read_token(a->token_file);
    o.retries = a->retries;
    convert::Sources sources = convert::open_sources(a->sources);
    ctx.if_interrupted = "the receiver keeps what it received: run the same send again to go on";
    const convert::SendResult r = convert::send_disks(*sandbox, sources, o);
    p2v_output::show_sent(ctx, r, a->to);
  });
}

void add_receive(CLI::App& group, Context& ctx) {
  auto* cmd = group.add_subcommand(
      "receive", "Receive disks from `p2v send` into images in a directory; prints the one-time token");
  struct Args {
    std::string listen, dir, format = "qcow2";
    bool overwrite = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--listen", a->listen, "ADDR:PORT to listen on (port 0: any free port, printed)")->required();
  cmd->add_option("--dir", a->dir, "Directory for the images (NAME.FORMAT per disk)")->required();
  cmd->add_option("-O,--target-format", a->format, "qcow2 (default), raw, vhdx");
  cmd->add_flag("--overwrite", a->overwrite, "Replace images that exist");
  add_json_flag(cmd, ctx);
  cmd->footer("Ends when the sender has sent all its disks. Dropped connections and wrong tokens are waited past.");
  cmd->callback([&ctx, a] {
    convert::ReceiveOptions o;
    o.dir = a->dir;
    o.format = a->format;
    o.overwrite = a->overwrite;
    convert::Receiver receiver(convert::parse_host_port(a->listen), o);
    p2v_output::show_listening(ctx, receiver.address(), receiver.token().text());
    ctx.if_interrupted = "what was received stays beside the images (.NAME.p2v-part): a new receive goes on with it";
    const convert::ReceiveResult r = receiver.run();
    p2v_output::show_received(ctx, r);
  });
}

}  // namespace

void register_p2v_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand("p2v", "Physical servers into virtual machines: image their disks, locally or over the network");
  group->require_subcommand(1);
  add_image(*group, ctx);
  add_send(*group, ctx);
  add_receive(*group, ctx);
}

}  // namespace arche::cli
