// Temporary files of arche's own writers: ".NAME.arche-tmp-PID-XXXX" (core/file.h
// PendingFile, file restores, local repository stores) and ".NAME.tmp-PID"
// (write_file_atomic). A process killed with SIGKILL, or a machine that lost power,
// leaves them behind at their full apparent size; whoever next writes into the same
// directory finds those whose process is gone and removes them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace arche::backup {

// The pid in such a temporary name, or 0 when `name` is not one.
pid_t temp_file_pid(std::string_view name);
bool is_temp_name(std::string_view name);
// True while a process with this pid exists on this machine.
bool process_alive(pid_t pid);

// ".NAME.arche-tmp-PID-XXXX" for a new temporary file beside `name`, within NAME_MAX
// (a long NAME is shortened; `unique` keeps two of them apart).
std::string make_temp_name(std::string_view name, uint64_t unique);

struct RemovedTemp {
  std::string path;
  uint64_t size = 0;
  pid_t pid = 0;
};
// Removes the temporary files in `dir` (not below it) whose process is gone.
std::vector<RemovedTemp> remove_dead_temp_files(const std::string& dir);

}  // namespace arche::backup
