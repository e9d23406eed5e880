#include "image/image_lock.h"

#include <bit>

#include "core/error.h"
#include "image/format.h"

namespace arche::image {

namespace {

constexpr int kPermissionBits = std::bit_width(static_cast<uint32_t>(kPermAll));

// The conflicts, phrased for the one who is refused.
[[noreturn]] void refused_held_permission(const File& file, uint32_t bit, const LockRequest& request) {
  // Another process does not share a permission we need.
  if (bit == kPermWrite)
    fail(ErrorCategory::busy,
         "{} is in use: another process (a VM, qemu-img, qemu-nbd or arche) has it open and does not let others write "
         "to it",
         file.path());
  fail(ErrorCategory::busy, "{} is in use: another process has it open and does not share the \"{}\" permission{}",
       file.path(), lock_permission_name(bit),
       request.held & kPermWrite ? "" : " (use -U/--force-share to read anyway)");
}

[[noreturn]] void refused_shared_permission(const File& file, uint32_t bit, const LockRequest& request) {
  // Another process holds a permission we do not share.
  if (request.held & kPermWrite)
    fail(ErrorCategory::busy, "{} is in use: another process (a VM, qemu-img, qemu-nbd or arche) has it open for {}",
         file.path(), bit == kPermWrite ? "writing" : lock_permission_name(bit));
  fail(ErrorCategory::busy,
       "{} is in use: another process is {} it; what we read could be inconsistent (use -U/--force-share to read "
       "anyway)",
       file.path(), bit == kPermWrite ? "writing to" : "allowed to " + lock_permission_name(bit));
}

}  // namespace

std::string lock_permission_name(uint32_t bit) {
  switch (bit) {
    case kPermConsistentRead: return "consistent read";
    case kPermWrite: return "write";
    case kPermWriteUnchanged: return "write unchanged";
    case kPermResize: return "resize";
    case kPermGraphMod: return "graph modification";
  }
  return "permission " + std::to_string(bit);
}

LockRequest lock_request_for(bool writable, bool force_share) {
  LockRequest r;
  r.held = kPermConsistentRead;
  if (writable) r.held |= kPermWrite | kPermWriteUnchanged | kPermResize;
  // Metadata formats cannot let anyone else write or resize under them, and a raw
  // image read without -U would be read inconsistently: QEMU refuses both alike.
  r.shared = force_share && !writable ? kPermAll : kPermAll & ~(kPermWrite | kPermResize);
  return r;
}

void lock_image_file(const File& file, const LockRequest& request) {
  for (int i = 0; i < kPermissionBits; ++i) {
    uint32_t bit = 1u << i;
    // QEMU's bytes only ever carry shared locks; false means a foreign exclusive one.
    bool ok = true;
    if (request.held & bit) ok = ok && file.lock_byte_shared(kLockHeldBase + i);
    if (!(request.shared & bit)) ok = ok && file.lock_byte_shared(kLockUnsharedBase + i);
    if (!ok) fail(ErrorCategory::busy, "{} is in use: another process holds an exclusive lock on it", file.path());
  }
  for (int i = 0; i < kPermissionBits; ++i) {
    uint32_t bit = 1u << i;
    if ((request.held & bit) && file.byte_locked_by_other(kLockUnsharedBase + i))
      refused_held_permission(file, bit, request);
  }
  for (int i = 0; i < kPermissionBits; ++i) {
    uint32_t bit = 1u << i;
    if (!(request.shared & bit) && file.byte_locked_by_other(kLockHeldBase + i))
      refused_shared_permission(file, bit, request);
  }
}

void lock_image_file(const File& file, const OpenOptions& options) {
  lock_image_file(file, lock_request_for(file.writable(), options.force_share));
}

}  // namespace arche::image
