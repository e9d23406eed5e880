#include "image/vmdk/vmdk_driver.h"

#include "core/endian.h"
#include "core/error.h"
#include "image/vmdk/vmdk_create.h"
#include "image/vmdk/vmdk_device.h"
#include "image/vmdk/vmdk_format.h"

namespace arche::image {

namespace {

class VmdkDriver final : public FormatDriver {
 public:
  std::string name() const override { return "vmdk"; }

  int probe(std::span<const uint8_t> head) const override {
    if (head.size() >= 4) {
      const uint32_t magic = load_le32(head.data());
      if (magic == vmdk::kSparseMagic || magic == vmdk::kCowdMagic) return 100;
    }
    return vmdk::looks_like_descriptor(head) ? 100 : 0;
  }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options,
                                    ChainState& chain) const override {
    return vmdk::VmdkDevice::open(path, options, chain);
  }

  void create(const std::string& path, const CreateOptions& options) const override { vmdk::create(path, options); }

  std::vector<CreateOptionInfo> create_options() const override {
    return {{"subformat", "monolithicSparse|streamOptimized", "monolithicSparse",
             "one sparse file, or a compressed stream for OVA and cloud uploads"},
            {"adapter_type", "ide|buslogic|lsilogic|legacyESX", "ide", "the controller recorded in the descriptor"},
            {"hwversion", "a number", "4", "the virtual hardware version recorded in the descriptor"},
            {"compat6", "on|off", "off", "the same as hwversion=6"},
            {"zeroed_grain", "on|off", "off", "record zeroed grains in the grain tables (newer VMware)"},
            {"toolsversion", "a number", "2147483647", "the VMware Tools version recorded (unknown, as qemu writes it)"}};
  }

  Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options) const override {
    return vmdk::measure(source, size, options);
  }

  CheckResult check(const std::string& path, RepairMode repair) const override {
    if (repair != RepairMode::none)
      fail(ErrorCategory::unsupported,
           "vmdk: repair is not supported; copy the readable data out with: arche image convert -O qcow2 {} NEW", path);
    OpenOptions o;
    o.format = "vmdk";
    o.open_backing = false;
    ChainState chain;
    std::unique_ptr<vmdk::VmdkDevice> dev;
    try {
      dev = vmdk::VmdkDevice::open(path, o, chain);
    } catch (const Error& e) {
      // Metadata too damaged to open is the finding, not a failure of the check.
      if (e.category() != ErrorCategory::corrupt) throw;
      CheckResult r;
      r.corruptions = 1;
      r.messages.push_back(std::string("ERROR ") + e.what());
      return r;
    }
    return vmdk::check_device(*dev);
  }
};

}  // namespace

const FormatDriver& vmdk_driver() {
  static const VmdkDriver driver;
  return driver;
}

}  // namespace arche::image
