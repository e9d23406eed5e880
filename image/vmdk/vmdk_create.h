// Creating and measuring VMDK images (the -o options of image create/convert).
#pragma once

#include <map>
#include <string>

#include "image/format.h"
#include "image/vmdk/vmdk_format.h"

namespace arche::image::vmdk {

struct CreateSettings {
  std::string subformat = "monolithicSparse";  // or streamOptimized
  std::string adapter_type = "ide";
  std::string hwversion = "4";
  std::string toolsversion = "2147483647";  // "unknown", as QEMU writes it
  bool zeroed_grain = false;
};

CreateSettings parse_create_settings(const std::map<std::string, std::string>& options);
// The header of a new sparse extent of `size` bytes (layout of the metadata).
SparseHeader sparse_layout(uint64_t size, const CreateSettings& settings);

void create(const std::string& path, const CreateOptions& options);
Measurement measure(BlockDevice* source, uint64_t size, const CreateOptions& options);

}  // namespace arche::image::vmdk
