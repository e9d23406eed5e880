#include "image/format.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/filesystem.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "image/mirror/assemble.h"
#include "image/mirror/mirror_driver.h"
#include "image/qcow2/qcow2_driver.h"
#include "image/raw.h"
#include "image/vdi/vdi_driver.h"
#include "image/vhd/vhd_driver.h"
#include "image/vhdx/vhdx_driver.h"
#include "image/vmdk/vmdk_driver.h"

namespace arche::image {

namespace {

// Deep enough for any real snapshot chain; shallow enough that a crafted chain of
// thousands of files fails fast instead of exhausting file descriptors or stack.
constexpr int kMaxChainDepth = 1000;

const std::vector<const FormatDriver*>& drivers() {
  static const std::vector<const FormatDriver*> all = {&qcow2_driver(), &vmdk_driver(), &vhd_driver(),
                                                       &vhdx_driver(), &vdi_driver(),  &raw_driver(),
                                                       &mirror_driver()};
  return all;
}

std::string canonical_format_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "vhd") return "vpc";
  if (lower == "img" || lower == "file") return "raw";
  return lower;
}

// Records a layer's file in the chain; a file that is already part of it is a loop.
void enter_chain(const std::string& path, ChainState& chain, bool is_backing) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno(errno, is_backing ? "backing file " + path : path);
  std::pair<uint64_t, uint64_t> id{st.st_dev, st.st_ino};
  if (std::find(chain.ids.begin(), chain.ids.end(), id) != chain.ids.end())
    fail(ErrorCategory::format, "backing file loop: {} is already part of this chain", path);
  chain.ids.push_back(id);
}

}  // namespace

CheckResult FormatDriver::check(const std::string&, RepairMode) const {
  CheckResult r;
  r.supported = false;
  return r;
}

const FormatDriver& driver_for(const std::string& format) {
  std::string name = canonical_format_name(format);
  for (const FormatDriver* d : drivers())
    if (d->name() == name) return *d;
  std::string known;
  for (const auto& n : format_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorCategory::usage, "unknown image format '{}' (known: {})", format, known);
}

std::vector<std::string> format_names() {
  std::vector<std::string> names;
  for (const FormatDriver* d : drivers()) names.push_back(d->name());
  return names;
}

std::string probe_format(const std::string& path) {
  if (mirror::is_mirror_name(path)) return "mirror";  // a name, not a file: "mirror:A+B"
  File f = File::open(path, OpenMode::read_only);
  std::vector<uint8_t> head(4096);
  head.resize(f.read_some(0, head));
  const FormatDriver* best = &raw_driver();
  int best_score = 0;
  for (const FormatDriver* d : drivers()) {
    int score = d->probe(head);
    if (score > best_score) {
      best = d;
      best_score = score;
    }
  }
  return best->name();
}

std::unique_ptr<BlockDevice> open_image(const std::string& path, const OpenOptions& options) {
  ChainState chain;
  if (mirror::is_mirror_name(path)) return mirror_driver().open(path, options, chain);
  enter_chain(path, chain, false);
  std::string format = options.format.empty() ? probe_format(path) : options.format;
  return driver_for(format).open(path, options, chain);
}

std::unique_ptr<BlockDevice> open_backing(const std::string& path, const std::string& format,
                                          const OpenOptions& options, ChainState& chain) {
  if (chain.depth + 1 >= kMaxChainDepth)
    fail(ErrorCategory::format, "{}: backing chain is deeper than {} images", path, kMaxChainDepth);
  if (mirror::is_mirror_name(path)) {  // a leaf over its legs: nothing below it to enter
    OpenOptions below = options;
    below.writable = false;
    return mirror_driver().open(path, below, chain);
  }
  enter_chain(path, chain, true);

  OpenOptions below = options;
  below.writable = false;  // lower layers are immutable while an overlay sits on them
  if (options.share_backing) below.force_share = true;
  below.format = format;
  std::string resolved_format = format;
  if (resolved_format.empty()) {
    resolved_format = probe_format(path);
    warn("backing file {} has no recorded format; probed as {} (record it with: arche image rebase -u -b {} -F {})",
         path, resolved_format, path, resolved_format);
  }
  ++chain.depth;
  auto dev = driver_for(resolved_format).open(path, below, chain);
  --chain.depth;
  return dev;
}

void create_image(const std::string& path, const CreateOptions& options) {
  CreateOptions resolved = options;
  if (!options.backing_file.empty()) {
    std::string backing_path = resolve_backing_path(path, options.backing_file);
    if (resolved.backing_format.empty()) resolved.backing_format = probe_format(backing_path);
    resolved.backing_format = driver_for(resolved.backing_format).name();
    if (resolved.size == 0) {
      OpenOptions o;
      o.format = resolved.backing_format;
      resolved.size = open_image(backing_path, o)->size();
    }
  }
  const FormatDriver& driver = driver_for(options.format);
  resolved.final_path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    if (!options.overwrite) fail(ErrorCategory::exists, "{} is a block device; pass --overwrite to format it", path);
    driver.create(path, resolved);
    return;
  }
  // Built under a temporary name: an interrupted create leaves nothing that looks valid.
  PendingFile pending(path, options.overwrite);
  driver.create(pending.temp_path(), resolved);
  pending.commit(/*durable=*/true);
}

std::string resolve_backing_path(const std::string& image_path, const std::string& backing) {
  if (mirror::is_mirror_name(backing))
    return mirror::resolve_mirror_name(boost::filesystem::path(image_path).parent_path().string(), backing);
  boost::filesystem::path b(backing);
  if (b.is_absolute()) return backing;
  boost::filesystem::path dir = boost::filesystem::path(image_path).parent_path();
  return dir.empty() ? backing : (dir / b).string();
}

std::map<std::string, std::string> parse_option_list(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail(ErrorCategory::usage, "invalid option '{}' (expected key=value)", item);
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace arche::image
