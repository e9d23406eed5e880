#include "image/mirror/mirror_driver.h"

#include "core/error.h"
#include "image/mirror/assemble.h"

namespace arche::image {

namespace {

class MirrorDriver final : public FormatDriver {
 public:
  std::string name() const override { return "mirror"; }
  // A leg is a plain image to every other tool: the mirror is never probed from
  // content, only named.
  int probe(std::span<const uint8_t>) const override { return 0; }

  std::unique_ptr<BlockDevice> open(const std::string& path, const OpenOptions& options, ChainState&) const override {
    mirror::MirrorOptions m;
    m.writable = options.writable;
    m.force_share = options.force_share;
    m.no_barriers = options.no_barriers;
    if (options.cache_bytes) m.table_cache_bytes = options.cache_bytes;
    return mirror::open_mirror(mirror::legs_named_by(path), m);
  }

  void create(const std::string&, const CreateOptions&) const override {
    fail(ErrorCategory::usage, "mirrors are made with: arche raid create A B --size SIZE");
  }

  std::vector<CreateOptionInfo> create_options() const override { return {}; }  // made by `raid create`

  Measurement measure(BlockDevice*, uint64_t, const CreateOptions&) const override {
    fail(ErrorCategory::usage, "mirrors are made with arche raid create, not converted into");
  }
};

}  // namespace

const FormatDriver& mirror_driver() {
  static const MirrorDriver driver;
  return driver;
}

}  // namespace arche::image
