// Shared by the pure-parser fuzz targets that write their own seeds (backup, s3,
// sftp, tape, hv, p2v_wire): when libFuzzer is given an empty corpus directory, the
// target fills it from LLVMFuzzerInitialize with valid inputs of every parser it
// selects (tests/fuzz/seeds.sh leaves their corpus empty).
#pragma once

#include <boost/filesystem.hpp>
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

namespace arche::fuzz {

// A seed file in `dir`: the selector byte that picks the parser, then its input.
inline void write_seed(const std::string& dir, const std::string& name, uint8_t selector, std::string_view input) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.put(static_cast<char>(selector));
  f.write(input.data(), static_cast<std::streamsize>(input.size()));
}

inline void write_seed(const std::string& dir, const std::string& name, uint8_t selector,
                       std::span<const uint8_t> input) {
  write_seed(dir, name, selector, std::string_view(reinterpret_cast<const char*>(input.data()), input.size()));
}

// For LLVMFuzzerInitialize: the corpus directory is the last argument that is not a
// flag; `write_seeds(dir)` runs when it is empty.
template <class WriteSeeds>
void seed_empty_corpus(int argc, char** argv, WriteSeeds write_seeds) {
  for (int i = argc - 1; i > 0; --i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-') continue;
    if (boost::filesystem::is_directory(arg) && boost::filesystem::is_empty(arg)) write_seeds(arg);
    return;
  }
}

}  // namespace arche::fuzz
