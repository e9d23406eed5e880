// What `image info` shows of a qcow2 image, from its header alone, and the stand-in
// device for encrypted images: info describes them (their header and the LUKS
// header are plain), but arche reads and writes none of their data.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/file.h"
#include "image/format.h"
#include "image/qcow2/qcow2_format.h"

namespace arche::image::qcow2 {

ImageInfo describe_image(const File& file, const Header& header, const std::vector<Snapshot>& snapshots,
                         const std::string& backing_path);

// The "encrypt" object of format-specific information, as qemu-img shows it: format
// (luks or aes) and, for LUKS, cipher, mode, IV generator, hash, uuid, payload offset.
Json describe_encryption(const File& file, const Header& header);

// For OpenOptions::info_only: a device that describes the encrypted image at `path`,
// or null when the image is not encrypted (open it as usual then).
std::unique_ptr<BlockDevice> open_encrypted_for_info(const std::string& path, const OpenOptions& options);

}  // namespace arche::image::qcow2
