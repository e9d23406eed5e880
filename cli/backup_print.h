// What `arche backup ...` prints: lines for people, and with --json one document
// per command (docs/cli.md shows each): kebab-case keys, times in RFC 3339 with the
// UTC offset, null for what is absent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/check.h"
#include "backup/copy.h"
#include "backup/lock.h"
#include "backup/prune.h"
#include "backup/repair.h"
#include "backup/restore.h"
#include "backup/snapshot.h"
#include "backup/stats.h"
#include "cli/command.h"
#include "core/json.h"

namespace arche::cli::backup_cli {

// "2026-11-21T13:46:02+01:00" (local time with its offset).
// TODO(lead): replace by core/json's RFC 3339 helper once the hardening branch is merged.
std::string rfc3339(int64_t unix_ns);
// "1 file", "2 files".
std::string count(uint64_t n, std::string_view singular, std::string_view plural);

void print_created(const Context& ctx, const backup::Snapshot& s, bool dry_run);
void print_restored(const Context& ctx, const backup::RestoreResult& r, const std::string& to, const std::string& format);
void print_list(const Context& ctx, const backup::SnapshotList& list);
void print_snapshot_info(const Context& ctx, const backup::Snapshot& s);
void print_repository_info(const Context& ctx, const backup::Repository& repo, const backup::RepoInfo& info);
void print_diff(const Context& ctx, const backup::SnapshotDiff& d);
void print_prune(const Context& ctx, const backup::PruneReport& r, bool dry_run);
void print_check(const Context& ctx, const backup::CheckReport& r, bool read_data);
void print_repair_index(const Context& ctx, const backup::RepairReport& r);
void print_repair_snapshots(const Context& ctx, const backup::SnapshotRepairReport& r, bool dry_run);
void print_copy(const Context& ctx, const backup::CopyReport& r, const std::string& src, const std::string& dst,
                bool dry_run);
void print_unlocked(const Context& ctx, const std::vector<backup::LockInfo>& removed);
void print_key_slots(const Context& ctx, const std::vector<std::pair<std::string, backup::KeySlot>>& slots,
                     const std::string& current);

}  // namespace arche::cli::backup_cli
