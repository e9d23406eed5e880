// The mirror's status as JSON (`arche raid status --json`, `image info`, and the
// VM's control socket): kebab-case keys, RFC 3339 times, null for what is absent.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"
#include "image/mirror/mirror_device.h"

namespace arche::image::mirror {

Json to_json(const MirrorStatus& status);
// "2026-12-01T10:00:00Z"; empty for 0.
std::string rfc3339(int64_t time_ns);

}  // namespace arche::image::mirror
