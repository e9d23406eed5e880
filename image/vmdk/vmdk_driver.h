// The VMDK FormatDriver (probe, open, create, measure, check).
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& vmdk_driver();

}  // namespace arche::image
