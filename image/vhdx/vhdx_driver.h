// The VHDX FormatDriver: probe, open, create, measure, check.
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& vhdx_driver();

}  // namespace arche::image
