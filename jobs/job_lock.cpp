#include "jobs/job_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "core/error.h"

namespace arche::jobs {

JobLock::JobLock(const std::string& path) : file_(File::open(path, OpenMode::read_write, O_CREAT)) {
  int r;
  do {
    r = ::flock(file_.fd(), LOCK_EX | LOCK_NB);
  } while (r != 0 && errno == EINTR);
  if (r != 0 && errno == EWOULDBLOCK)
    fail(ErrorCategory::busy, "{}: another run of this job is still going (it holds the lock)", path);
  if (r != 0) throw_errno(errno, "flock " + path);
}

}  // namespace arche::jobs
