#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace arche {

int exit_code(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::usage: return 64;
    case ErrorCategory::format: return 65;
    case ErrorCategory::not_found: return 66;
    case ErrorCategory::unsupported: return 69;
    case ErrorCategory::internal: return 70;
    case ErrorCategory::exists: return 73;
    case ErrorCategory::io: return 74;
    case ErrorCategory::busy: return 75;
    case ErrorCategory::permission: return 77;
    case ErrorCategory::corrupt: return 80;
    case ErrorCategory::crypto: return 81;
    case ErrorCategory::kvm: return 82;
    case ErrorCategory::no_space: return 83;
    case ErrorCategory::interrupted: return 130;
  }
  return 70;
}

const char* category_name(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::usage: return "usage";
    case ErrorCategory::format: return "format";
    case ErrorCategory::not_found: return "not_found";
    case ErrorCategory::unsupported: return "unsupported";
    case ErrorCategory::internal: return "internal";
    case ErrorCategory::exists: return "exists";
    case ErrorCategory::io: return "io";
    case ErrorCategory::busy: return "busy";
    case ErrorCategory::permission: return "permission";
    case ErrorCategory::corrupt: return "corrupt";
    case ErrorCategory::crypto: return "crypto";
    case ErrorCategory::kvm: return "kvm";
    case ErrorCategory::no_space: return "no_space";
    case ErrorCategory::interrupted: return "interrupted";
  }
  return "internal";
}

ErrorCategory category_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return ErrorCategory::not_found;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return ErrorCategory::no_space;
    case EACCES:
    case EPERM:
    case EROFS: return ErrorCategory::permission;
    case EEXIST: return ErrorCategory::exists;
    case EBUSY:
    case EWOULDBLOCK: return ErrorCategory::busy;
    case EINTR: return ErrorCategory::interrupted;
    case EOPNOTSUPP: return ErrorCategory::unsupported;
    default: return ErrorCategory::io;
  }
}

void throw_errno(int err, const std::string& context) {
  throw Error(category_for_errno(err), context + ": " + std::strerror(err));
}

}  // namespace arche
