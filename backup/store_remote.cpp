#include "backup/store_remote.h"

#include "backup/remote_url.h"
#include "backup/store_s3.h"
#include "backup/store_sftp.h"

namespace arche::backup {

std::unique_ptr<Store> open_remote_store(const std::string& url) {
  const std::string scheme = url_scheme(url);
  if (scheme == "sftp") return SftpStore::from_url(url);
  if (scheme == "s3" || scheme == "s3+http") return S3Store::from_url(url);
  return nullptr;
}

}  // namespace arche::backup
