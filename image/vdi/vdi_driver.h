// The VDI FormatDriver: probe, open, create (static=on|off), measure, check.
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& vdi_driver();

}  // namespace arche::image
