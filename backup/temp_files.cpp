#include "backup/temp_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include <fmt/format.h>

namespace arche::backup {

namespace {
constexpr std::string_view kMarkers[] = {".arche-tmp-", ".tmp-"};
// Room left for ".", ".arche-tmp-", a pid and the unique suffix within NAME_MAX.
constexpr size_t kMaxTempStem = NAME_MAX - 48;
}  // namespace

pid_t temp_file_pid(std::string_view name) {
  if (name.size() < 2 || name[0] != '.') return 0;
  for (std::string_view marker : kMarkers) {
    size_t at = name.rfind(marker);
    if (at == std::string_view::npos || at == 0) continue;
    pid_t pid = 0;
    size_t i = at + marker.size();
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && pid < (1 << 22); ++i) pid = pid * 10 + (name[i] - '0');
    // PendingFile adds "-XXXX" after the pid; write_file_atomic ends with it.
    if (pid > 0 && (i == name.size() || name[i] == '-')) return pid;
  }
  return 0;
}

bool is_temp_name(std::string_view name) { return temp_file_pid(name) != 0; }

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::string make_temp_name(std::string_view name, uint64_t unique) {
  return fmt::format(".{}.arche-tmp-{}-{:x}", name.substr(0, kMaxTempStem), ::getpid(), unique & 0xffffffff);
}

std::vector<RemovedTemp> remove_dead_temp_files(const std::string& dir) {
  std::vector<RemovedTemp> removed;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return removed;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = temp_file_pid(e->d_name);
    if (pid <= 0 || pid == ::getpid() || process_alive(pid)) continue;
    struct stat st {};
    if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlinkat(dirfd(d), e->d_name, 0) == 0)
      removed.push_back({dir + "/" + e->d_name, static_cast<uint64_t>(st.st_size), pid});
  }
  ::closedir(d);
  return removed;
}

}  // namespace arche::backup
