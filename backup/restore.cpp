#include "backup/restore.h"

#include "backup/lock.h"
#include "core/error.h"
#include "core/file.h"

namespace arche::backup {

namespace {

const ImageRecord& find_image_or_fail(const Snapshot& s, const std::string& wanted) {
  if (const ImageRecord* image = s.find_image(wanted)) return *image;
  std::string names;
  for (const ImageRecord& i : s.images) names += (names.empty() ? "" : ", ") + i.name;
  fail(ErrorCategory::not_found, "snapshot {} has no image '{}' (it has: {})", s.name, wanted,
       names.empty() ? "none" : names);
}

}  // namespace

RestoreResult restore_snapshot(Repository& repo, const RestoreRequest& request) {
  if (!request.image.empty() && !request.file_options.paths.empty())
    fail(ErrorCategory::usage, "restore: give either --image or PATHs, not both");
  RepoLock lock(repo, LockMode::shared, "backup restore " + request.snapshot);
  repo.load_index(/*adopt_unindexed=*/false);
  std::vector<DamagedManifest> damaged;
  std::vector<Snapshot> all = load_snapshots(repo, &damaged);
  RestoreResult result;
  result.snapshot = resolve_snapshot(all, request.snapshot, damaged);
  if (request.image.empty()) {
    result.file_stats = restore_files(repo, result.snapshot, request.to, request.file_options);
    return result;
  }
  result.image = find_image_or_fail(result.snapshot, request.image);
  try {
    result.image_stats = restore_image(repo, *result.image, request.to, request.image_options);
  } catch (const Error& e) {
    if (e.category() != ErrorCategory::interrupted) throw;
    bool device = false;
    try {
      device = File::open(request.to, OpenMode::read_only).is_block_device();
    } catch (const Error&) {
    }
    fail(ErrorCategory::interrupted, "{}: restore of image {} stopped; {}", e.what(), result.image->name,
         device ? request.to + " holds part of the image now"
                : request.to + " is as it was (the partial file was removed)");
  }
  return result;
}

}  // namespace arche::backup
