// Helpers shared by the VHD, VHDX and VDI tests: a source disk with data, zero runs
// and holes, qemu-img calls, the BlockDevice random-write exercise against an
// in-memory model, and checks on failing commands.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/common/test_util.h"

namespace arche::test::foreign {

// A raw disk of `size` bytes: random data runs (aligned and not), explicit zero
// bytes written as data, and holes. Returns the bytes of 4 KiB pages that are not
// all zero (the data a sparse copy must hold).
uint64_t make_source(const std::string& path, uint64_t size, uint64_t seed);

// Runs qemu-img (or qemu-io) and fails the test with its stderr when it fails.
CommandResult qemu_img(const std::vector<std::string>& args);
CommandResult qemu_io(const std::vector<std::string>& args);
// virtual-size from `qemu-img info --output=json`.
uint64_t qemu_virtual_size(const std::string& path, const std::string& format);

uint64_t allocated_bytes(const std::string& path);
// Bytes `qemu-img map` reports as data ("data": true) for an image.
uint64_t qemu_data_bytes(const std::string& path, const std::string& format);
bool files_equal(const std::string& a, const std::string& b);

// The image read through arche (open_image + read) as bytes.
std::vector<uint8_t> read_image(const std::string& path, const std::string& format = "");

// Random writes, zero writes and discards through the BlockDevice write path,
// checked against a model after every step, after flush, and after close+reopen.
// Leaves the final content in `model`.
void random_write_exercise(const std::string& path, const std::string& format, uint64_t seed, int steps,
                           std::vector<uint8_t>& model);

// `arche` failed cleanly: exit code in arche's error range, no signal, exactly one
// line on stderr, and it mentions `needle`.
void expect_clean_failure(const CommandResult& r, const std::string& needle);

// Reads/writes bytes of a file at an offset.
std::vector<uint8_t> pread_file(const std::string& path, uint64_t offset, size_t length);
void pwrite_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data);

}  // namespace arche::test::foreign
