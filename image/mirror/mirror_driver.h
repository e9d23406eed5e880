// The mirror as an image format: "mirror:A+B[+C]" (or a leg's path with format
// "mirror") opens the array wherever arche takes an image — image commands,
// `vm run --disk`, `backup --image`, the backing file of an overlay.
#pragma once

#include "image/format.h"

namespace arche::image {

const FormatDriver& mirror_driver();

}  // namespace arche::image
