// What the `arche image` commands print: the lines for people and the JSON
// documents of --json (docs/cli.md, "JSON output"). cli/image_commands.cpp parses
// the arguments and calls the library; everything shown is shaped here.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "image/format.h"
#include "image/ops/commit.h"
#include "image/ops/compare.h"
#include "image/ops/convert.h"
#include "image/ops/rebase.h"
#include "image/ova/ova_import.h"

namespace arche::cli::image_output {

// `-o help`: the creation options of a format.
void show_create_options(const Context& ctx, const image::FormatDriver& driver);

void show_created(const Context& ctx, const std::string& file, const image::ImageInfo& info);
// One image, or (chain) every image of the backing chain, top first.
void show_info(const Context& ctx, const std::vector<image::ImageInfo>& infos, bool chain);
void show_check(const Context& ctx, const std::string& file, const std::string& format, const image::CheckResult& r);
void show_map(const Context& ctx, const std::vector<image::Extent>& extents);
void show_compare(const Context& ctx, const image::CompareResult& r);
void show_convert(const Context& ctx, const std::string& src, const std::string& dst, const std::string& format,
                  const image::ConvertStats& s);
void show_commit(const Context& ctx, const std::string& overlay, const image::CommitStats& s);
void show_rebase(const Context& ctx, const std::string& overlay, const std::string& backing,
                 const image::RebaseStats& s);
void show_resize(const Context& ctx, const std::string& file, uint64_t old_size, uint64_t new_size);
void show_measure(const Context& ctx, const image::Measurement& m);
void show_written(const Context& ctx, const std::string& file, const std::string& what, uint64_t offset);
void show_import(const Context& ctx, const std::string& package, const image::ova::ImportResult& r);

}  // namespace arche::cli::image_output
