// The remote stores behind one call, for open_store() (store.h) to hand the URL
// schemes it does not serve itself: sftp:// (SftpStore), s3:// and s3+http://
// (S3Store). Configuration and secrets come from the environment
// (docs/storage.md).
#pragma once

#include <memory>
#include <string>

#include "backup/store.h"

namespace arche::backup {

// nullptr when `url` is not one of the remote schemes (a local path, or another scheme
// for open_store to refuse).
std::unique_ptr<Store> open_remote_store(const std::string& url);

}  // namespace arche::backup
