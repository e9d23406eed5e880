// Helpers for image tests: qemu-img as the referee, whole-image reads.
#pragma once

#include <string>
#include <vector>

#include "image/block_device.h"
#include "tests/common/test_util.h"

namespace arche::test {

// Runs qemu-img / qemu-io with the arguments; returns the result.
CommandResult qemu_img(const std::vector<std::string>& args);
CommandResult qemu_io(const std::string& image, const std::string& format, const std::vector<std::string>& commands);

// Whole virtual disk content as arche reads it.
std::vector<uint8_t> read_all(image::BlockDevice& dev);
// `format` empty: probed.
std::vector<uint8_t> read_all_arche(const std::string& path, const std::string& format = "");
// Whole virtual disk content as qemu-img reads it (convert -O raw).
std::vector<uint8_t> read_all_qemu(const std::string& path, const std::string& dir);

// qemu-img check succeeded with neither corruptions nor leaks.
::testing::AssertionResult qemu_check_clean(const std::string& path);

}  // namespace arche::test
