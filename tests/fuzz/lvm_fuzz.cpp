// libFuzzer target for LVM2: the text metadata parser and the volume group model
// on the input as text, and the input as a physical volume (label, metadata area
// header, circular text buffer), assembled into a VG whose LVs are opened and read.
#include <string_view>

#include "core/error.h"
#include "volume/lvm.h"
#include "volume/lvm_metadata.h"
#include "volume/views.h"

using namespace arche;
using namespace arche::volume;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (256 << 10)) return 0;  // targets.sh: -max_len
  try {
    lvm::Section root = lvm::parse_metadata(std::string_view(reinterpret_cast<const char*>(data), size));
    (void)lvm::parse_volume_group(root);
  } catch (const Error&) {
  }
  auto pv = std::make_shared<MemoryDevice>(std::vector<uint8_t>(data, data + size), "fuzz-pv");
  try {
    std::optional<lvm::PvLabel> label = lvm::read_pv_label(*pv);
    if (!label) return 0;
    std::vector<lvm::PvProblem> problems;
    std::vector<lvm::AssembledVg> vgs = lvm::assemble_volume_groups({{pv, *label, "fuzz"}}, problems);
    uint8_t buf[4096];
    for (const lvm::AssembledVg& vg : vgs) {
      for (const lvm::LogicalVolume& lv : vg.vg.lvs) {
        try {
          std::shared_ptr<image::BlockDevice> dev = lvm::open_logical_volume(vg, lv);
          const uint64_t n = std::min<uint64_t>(sizeof buf, dev->size());
          dev->read(0, std::span(buf, n));
          if (dev->size() > n) dev->read(dev->size() - n, std::span(buf, n));
        } catch (const Error&) {
        }
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
