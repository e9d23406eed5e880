#include "cli/volume_output.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/json.h"
#include "core/units.h"
#include "volume/listing.h"
#include "volume/volume_path.h"

namespace arche::cli::volume_output {

void show_volumes(const Context& ctx, volume::Tree& tree, const std::string& file,
                  const std::vector<const volume::Filesystem*>& opened, const std::vector<std::string>& open_errors) {
  const auto& volumes = tree.volumes();
  if (ctx.json) {
    Json list = Json::array();
    for (size_t i = 0; i < volumes.size(); ++i) {
      Json v = volume::volume_json(tree, volumes[i], opened[i]);
      v["error"] = open_errors[i].empty() ? Json(nullptr) : Json(open_errors[i]);
      list.push_back(std::move(v));
    }
    print_json(Json{{"image", file}, {"volumes", list}});
    return;
  }
  for (const std::string& l : volume::volume_lines(tree, opened)) std::puts(l.c_str());
  for (size_t i = 0; i < volumes.size(); ++i)
    if (!open_errors[i].empty())
      std::printf("%s: cannot open: %s\n", volume::volume_address(volumes[i]).c_str(), open_errors[i].c_str());
}

void show_listing(const Context& ctx, const std::string& file, const std::string& address, const std::string& volume,
                  const std::string& fs_type, bool directory, const std::vector<ListedEntry>& entries) {
  if (!ctx.json) {
    for (const ListedEntry& e : entries) std::puts(volume::entry_line(e.entry, e.target).c_str());
    return;
  }
  Json list = Json::array();
  for (const ListedEntry& e : entries) list.push_back(volume::entry_json(e.entry, e.path, e.target, e.streams));
  print_json(Json{{"image", file},
                  {"path", address},
                  {"volume", volume},
                  {"fs", fs_type},
                  {"directory", directory},
                  {"entries", list}});
}

void show_extracted(const Context& ctx, const std::string& to, const volume::ExtractStats& total) {
  if (ctx.json) {
    print_json(Json{{"to", to},
                    {"files", total.files},
                    {"directories", total.dirs},
                    {"links", total.links},
                    {"other", total.other},
                    {"bytes", total.bytes},
                    {"warnings", total.warnings}});
    return;
  }
  say(ctx, fmt::format("extracted {} file{}, {} director{}, {} link{} ({}) into {}{}", total.files,
                       total.files == 1 ? "" : "s", total.dirs, total.dirs == 1 ? "y" : "ies", total.links,
                       total.links == 1 ? "" : "s", format_size(total.bytes), to,
                       total.warnings ? fmt::format("; {} warning(s)", total.warnings) : ""));
}

}  // namespace arche::cli::volume_output
