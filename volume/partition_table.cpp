#include "volume/partition_table.h"

#include <vector>

#include "core/error.h"

namespace arche::volume {

const char* to_string(PartitionScheme scheme) { return scheme == PartitionScheme::gpt ? "gpt" : "mbr"; }

std::optional<PartitionTable> read_partition_table(image::BlockDevice& disk) {
  if (disk.size() < 512) return std::nullopt;
  std::optional<PartitionTable> mbr = read_mbr(disk);
  if (!mbr) return std::nullopt;
  bool protective = false, others = false;
  for (const Partition& p : mbr->partitions) (p.type_id == "0xee" ? protective : others) = true;
  if (!protective) return mbr;
  for (uint32_t ss : {512u, 4096u}) {
    std::optional<PartitionTable> gpt = read_gpt(disk, ss);
    if (!gpt) continue;
    if (others) gpt->notes.push_back("hybrid MBR: its entries besides the protective one are ignored; the GPT is read");
    return gpt;
  }
  fail(ErrorCategory::corrupt, "the MBR announces a GPT (type 0xee), but there is no GPT header at LBA 1 nor a backup");
}

}  // namespace arche::volume
