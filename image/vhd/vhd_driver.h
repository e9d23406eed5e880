// The VHD FormatDriver ("vpc", alias "vhd"): probe, open, create, measure, check.
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& vhd_driver();

}  // namespace arche::image
