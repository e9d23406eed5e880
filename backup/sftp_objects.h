// The ObjectReader and ObjectWriter of SftpStore (store_sftp.h says what they
// guarantee): a reader holding one open handle, reopened after a dropped connection;
// a writer uploading to a temporary object with many WRITEs in flight, resuming over a
// new session, and renaming it into place at commit().
#pragma once

#include <deque>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backup/sftp_client.h"
#include "backup/store.h"

namespace arche::backup {
class SftpStore;
}

namespace arche::backup::sftp {

// What marks a writer's temporary object: ".NAME.arche-tmp-RANDOM".
constexpr std::string_view kTempMarker = ".arche-tmp-";

std::unique_ptr<ObjectReader> open_reader(SftpStore& store, std::string name);
std::unique_ptr<ObjectWriter> open_writer(SftpStore& store, std::string name, WriteMode mode);

}  // namespace arche::backup::sftp
