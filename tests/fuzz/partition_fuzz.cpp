// libFuzzer target for partition tables and the volume tree: the input is a
// whole disk. GPT (primary, backup, both sector sizes), MBR with its EBR chain,
// content probing of every partition and LVM PV labels and metadata found on them.
// Any input must end in success or an arche::Error, never a crash or a hang.
#include "core/error.h"
#include "volume/partition_table.h"
#include "volume/probe.h"
#include "volume/tree.h"
#include "volume/views.h"

using namespace arche;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;  // targets.sh: -max_len
  auto disk = std::make_shared<volume::MemoryDevice>(std::vector<uint8_t>(data, data + size), "fuzz");
  for (uint32_t ss : {512u, 4096u}) {
    try {
      (void)volume::read_gpt(*disk, ss);
    } catch (const Error&) {
    }
  }
  try {
    (void)volume::read_mbr(*disk);
  } catch (const Error&) {
  }
  try {
    (void)volume::identify(*disk);
  } catch (const Error&) {
  }
  try {
    std::unique_ptr<volume::Tree> tree = volume::explore({{"fuzz", disk}});
    (void)tree->volumes();
  } catch (const Error&) {
  }
  return 0;
}
