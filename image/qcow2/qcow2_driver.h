// The qcow2 FormatDriver (probe, open, create, measure, check).
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& qcow2_driver();

namespace qcow2 {
// Checks (and with `repair`, fixes) the metadata of the qcow2 image in `file`, which
// the caller has opened (read-write when repairing) and locked.
CheckResult check_file(const File& file, RepairMode repair);
// Writes a new, empty qcow2 image into `path` (which must not exist or be empty).
void create(const std::string& path, const CreateOptions& options);
}  // namespace qcow2

}  // namespace arche::image
