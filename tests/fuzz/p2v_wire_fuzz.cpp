// libFuzzer target for the decoder of `p2v send` / `receive` messages
// (convert/p2v_wire.h): any input ends in a message or an arche::Error, and a
// decoded message encodes back to exactly its input. The target writes its own
// seeds (one valid message of every type) into an empty corpus directory.
#include <boost/filesystem.hpp>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "convert/p2v_wire.h"
#include "core/error.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;
using namespace arche::convert;

namespace {

void write_seeds(const std::string& dir) {
  std::vector<wire::Message> seeds;
  wire::Message m;
  m.type = wire::Type::disk;
  m.index = 1;
  m.name = "sda";
  m.size = 1 << 30;
  m.selected = 1 << 20;
  m.digest.fill(0x5a);
  seeds.push_back(m);
  m = {};
  m.type = wire::Type::resume;
  m.position = 64 << 20;
  m.complete = true;
  seeds.push_back(m);
  m = {};
  m.type = wire::Type::data;
  m.position = 4096;
  m.data.assign(600, 0xab);
  seeds.push_back(m);
  for (wire::Type t : {wire::Type::mark, wire::Type::stored, wire::Type::end, wire::Type::bye, wire::Type::bye_ack}) {
    m = {};
    m.type = t;
    m.position = 8 << 20;
    seeds.push_back(m);
  }
  m = {};
  m.type = wire::Type::refuse;
  m.category = static_cast<uint8_t>(ErrorCategory::exists);
  m.reason = "/srv/vm/sda.qcow2 already exists";
  seeds.push_back(m);
  int n = 0;
  for (const wire::Message& s : seeds) {
    const std::vector<uint8_t> bytes = wire::encode(s);
    std::ofstream f(dir + "/seed" + std::to_string(n++), std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wire::Message m;
  try {
    m = wire::decode(std::span(data, size));
  } catch (const Error&) {
    return 0;
  }
  const std::vector<uint8_t> back = wire::encode(m);
  if (back.size() != size || !std::equal(back.begin(), back.end(), data)) std::abort();
  return 0;
}
