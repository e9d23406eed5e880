// What the `arche tape` commands print: the lines for people and the JSON of
// --json (docs/cli.md, docs/tape.md). cli/tape_commands.cpp parses the arguments
// and calls tape/; everything shown is shaped here.
#pragma once

#include <string>

#include "cli/command.h"
#include "tape/catalog.h"
#include "tape/file_restore.h"
#include "tape/labelling.h"
#include "tape/tape_backup.h"
#include "tape/tape_read.h"

namespace arche::cli::tape_output {

void show_labelled(const Context& ctx, const tape::MediaLabel& label, const std::string& device);
void show_status(const Context& ctx, const tape::TapeStatus& s);
void show_backup(const Context& ctx, const tape::TapeBackupReport& r);
void show_list(const Context& ctx, const tape::Catalog& c, const std::string& pool);
void show_restored(const Context& ctx, const tape::TapeRestoreReport& r);
void show_file_restored(const Context& ctx, const tape::TapeFileRestoreReport& r);
void show_image_restored(const Context& ctx, const tape::TapeImageRestoreReport& r, const std::string& format);
void show_verified(const Context& ctx, const tape::VerifyReport& r);
void show_rebuilt(const Context& ctx, const tape::Catalog& c, const std::string& dir,
                  const std::vector<std::string>& notes);

}  // namespace arche::cli::tape_output
