// Shared by the P2V tests: the old-server fixture, and checks of an image
// against its source through the used-block map.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "convert/used_map.h"
#include "image/block_device.h"
#include "tests/common/test_util.h"

namespace arche::convert::testing {

std::shared_ptr<image::BlockDevice> open_read_only(const std::string& path);

// The map of raw source images, explored in this process.
UsedMap map_of(const std::vector<std::string>& raw_sources);

// The image equals the source on every range of the map, and reads as zeros
// everywhere else (no deleted data came along). Returns the bytes compared.
uint64_t expect_image_matches(const std::string& source, const std::string& image, const DiskMap& map);

// Bytes [offset, offset + length) of an image (any format) into a new raw file.
void copy_out(const std::string& image, uint64_t offset, uint64_t length, const std::string& file);

}  // namespace arche::convert::testing
