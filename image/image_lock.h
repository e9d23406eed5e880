// Image locks that QEMU, qemu-img, qemu-nbd and arche all see: QEMU's scheme of
// block/file-posix.c, so a VM under either hypervisor and every tool refuse what
// the others hold.
//
// Each way of using an image is a permission bit. For every bit a process HOLDS it
// keeps a shared OFD lock on byte 100 + bit of the image file; for every bit it does
// NOT SHARE with others, a shared lock on byte 200 + bit. Taking the locks is
// "lock first, then look": apply our bytes, then check that no other open file
//   - refuses a permission we hold (its byte 200 + bit is locked), nor
//   - holds a permission we refuse (its byte 100 + bit is locked).
// Two openers racing each see the other's bytes, so at most one wins. The locks
// live as long as the open file (closing it, or the process dying, drops them).
//
//   who                     holds                     does not share
//   writer (arche, a VM)    consistent-read, write,   write, resize
//                           write-unchanged, resize
//   reader                  consistent-read           write, resize
//   reader with -U          consistent-read           (shares everything)
//
// So a reader without -U refuses to start while a writer runs (what it read could
// be inconsistent) and keeps writers out while it reads; -U reads anyway, like
// `qemu-img info -U`.
#pragma once

#include <cstdint>
#include <string>

#include "core/file.h"

namespace arche::image {

struct OpenOptions;

// QEMU's BLK_PERM_* bits, in QEMU's order (the byte offsets depend on it).
enum LockPermission : uint32_t {
  kPermConsistentRead = 1u << 0,
  kPermWrite = 1u << 1,
  kPermWriteUnchanged = 1u << 2,
  kPermResize = 1u << 3,
  kPermGraphMod = 1u << 4,  // changing the block graph; arche neither holds nor refuses it
  kPermAll = (1u << 5) - 1,
};

constexpr uint64_t kLockHeldBase = 100;      // byte 100 + bit: the permission is held
constexpr uint64_t kLockUnsharedBase = 200;  // byte 200 + bit: the permission is refused to others

// "consistent read", "write", "write unchanged", "resize", "graph modification".
std::string lock_permission_name(uint32_t bit);

struct LockRequest {
  uint32_t held = 0;
  uint32_t shared = kPermAll;
};

// What an open with these options holds and shares (the table above).
LockRequest lock_request_for(bool writable, bool force_share);

// Applies and checks `request` on the open file. Throws a busy error naming the
// permission in conflict; the bytes taken stay until the file is closed (callers
// close it on the error).
void lock_image_file(const File& file, const LockRequest& request);
// The same for an image being opened with `options`.
void lock_image_file(const File& file, const OpenOptions& options);

}  // namespace arche::image
