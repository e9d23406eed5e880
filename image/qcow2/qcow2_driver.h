// The qcow2 FormatDriver (probe, open, create, measure, check).
#pragma once

#include "image/format.h"
#include "image/qcow2/qcow2_format.h"

namespace arche::image {

const FormatDriver& qcow2_driver();

namespace qcow2 {
// Checks (and with `repair`, fixes) the metadata of the qcow2 image in `file`, which
// the caller has opened (read-write when repairing) and locked.
CheckResult check_file(const File& file, RepairMode repair);
// Reads and parses the header from the first cluster of `file`.
Header read_header(const File& file);
// Reads the internal snapshot table the header names; `table_bytes` (optional)
// receives its size on disk.
std::vector<Snapshot> read_snapshots(const File& file, const Header& header, uint64_t* table_bytes);
// Writes a new, empty qcow2 image into `path` (which must not exist or be empty).
void create(const std::string& path, const CreateOptions& options);
}  // namespace qcow2

}  // namespace arche::image
