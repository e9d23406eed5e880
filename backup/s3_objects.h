// The ObjectReader and ObjectWriter of S3Store (store_s3.h says what they guarantee):
// ranged GETs into the caller's buffer; one PUT for a small object, else a multipart
// upload streamed part by part and aborted when the writer goes uncommitted. And the
// small reply helpers the store shares with them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backup/s3_http.h"
#include "backup/store.h"

namespace arche::backup {
class S3Store;
}

namespace arche::backup::s3 {

// `size` bounds the reads (UINT64_MAX: unknown, the server's reply decides).
std::unique_ptr<ObjectReader> open_reader(S3Store& store, std::string name, uint64_t size);
std::unique_ptr<ObjectWriter> open_writer(S3Store& store, std::string name, WriteMode mode);

// Text from a reply made fit for a one-line message: control characters blanked, bounded.
std::string one_line(std::string_view text, size_t limit = 200);
inline bool success(long status) { return status >= 200 && status < 300; }
// The <Code> of an error reply's body ("NoSuchKey"), "" when it has none.
std::string error_code(const HttpResponse& response);

}  // namespace arche::backup::s3
