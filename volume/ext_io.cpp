#include "volume/ext_io.h"

#include <et/com_err.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "core/units.h"

namespace arche::volume::ext {

namespace {

struct Channel {
  struct struct_io_channel io;  // first: libext2fs hands us back its address
  std::shared_ptr<IoState> state;
  std::string name;
};

// ext2fs_open2 calls the manager's open with nothing but a name: the state to use
// is handed over here, for the duration of that one call on this thread.
thread_local std::shared_ptr<IoState> t_opening;

io_manager manager();

Channel* channel_of(io_channel io) { return reinterpret_cast<Channel*>(io); }

uint64_t byte_count(io_channel io, int count) {
  // A negative count is a byte count (libext2fs' convention).
  return count < 0 ? static_cast<uint64_t>(-static_cast<int64_t>(count))
                   : static_cast<uint64_t>(count) * static_cast<uint64_t>(io->block_size);
}

errcode_t read_bytes(IoState& s, uint64_t offset, uint64_t length, void* data) {
  auto* out = static_cast<uint8_t*>(data);
  if (!range_within(offset, length, s.device->size())) {
    // Beyond the end of the volume: a file system that claims more blocks than it has.
    s.last_error = fmt::format("read of {} bytes at {} beyond the end of the {}-byte volume", length, offset,
                               s.device->size());
    return EXT2_ET_SHORT_READ;
  }
  try {
    s.device->read(offset, std::span(out, length));
  } catch (const std::exception& e) {
    s.last_error = e.what();
    return EIO;
  }
  if (s.overlay.empty()) return 0;
  const uint64_t first = offset / IoState::kUnit * IoState::kUnit;
  for (auto it = s.overlay.lower_bound(first); it != s.overlay.end() && it->first < offset + length; ++it) {
    const uint64_t from = std::max(offset, it->first), to = std::min(offset + length, it->first + IoState::kUnit);
    std::memcpy(out + (from - offset), it->second.data() + (from - it->first), to - from);
  }
  return 0;
}

errcode_t write_bytes(IoState& s, uint64_t offset, uint64_t length, const void* data) {
  if (!range_within(offset, length, s.device->size())) return EXT2_ET_SHORT_WRITE;
  const auto* in = static_cast<const uint8_t*>(data);
  try {
    for (uint64_t unit = offset / IoState::kUnit * IoState::kUnit; unit < offset + length; unit += IoState::kUnit) {
      auto [it, fresh] = s.overlay.try_emplace(unit);
      const uint64_t from = std::max(offset, unit), to = std::min(offset + length, unit + IoState::kUnit);
      if (fresh && (from != unit || to != unit + IoState::kUnit)) {
        // A partial unit: start from what the device holds there.
        const uint64_t n = std::min(IoState::kUnit, s.device->size() - unit);
        s.device->read(unit, std::span(it->second.data(), n));
      }
      std::memcpy(it->second.data() + (from - unit), in + (from - offset), to - from);
    }
  } catch (const std::bad_alloc&) {
    return EXT2_ET_NO_MEMORY;
  } catch (const std::exception& e) {
    s.last_error = e.what();
    return EIO;
  }
  return 0;
}

errcode_t ch_open(const char* name, int /*flags*/, io_channel* out) {
  if (!t_opening) return EXT2_ET_BAD_DEVICE_NAME;
  try {
    auto* c = new Channel;
    std::memset(&c->io, 0, sizeof c->io);
    c->state = t_opening;
    c->name = name ? name : "volume";
    c->io.magic = EXT2_ET_MAGIC_IO_CHANNEL;
    c->io.manager = manager();
    c->io.name = c->name.data();
    c->io.block_size = 1024;
    c->io.refcount = 1;
    c->io.flags = 0;
    *out = &c->io;
    return 0;
  } catch (const std::bad_alloc&) {
    return EXT2_ET_NO_MEMORY;
  }
}

errcode_t ch_close(io_channel io) {
  if (--io->refcount > 0) return 0;
  Channel* c = channel_of(io);
  c->io.manager = nullptr;
  delete c;
  return 0;
}

errcode_t ch_set_blksize(io_channel io, int size) {
  if (size <= 0 || size > 65536) return EXT2_ET_INVALID_ARGUMENT;
  io->block_size = size;
  return 0;
}

errcode_t ch_read_blk64(io_channel io, unsigned long long block, int count, void* data) {
  const uint64_t bytes = byte_count(io, count);
  if (block > UINT64_MAX / static_cast<uint64_t>(io->block_size)) return EXT2_ET_SHORT_READ;
  return read_bytes(*channel_of(io)->state, block * io->block_size, bytes, data);
}

errcode_t ch_write_blk64(io_channel io, unsigned long long block, int count, const void* data) {
  if (block > UINT64_MAX / static_cast<uint64_t>(io->block_size)) return EXT2_ET_SHORT_WRITE;
  return write_bytes(*channel_of(io)->state, block * io->block_size, byte_count(io, count), data);
}

errcode_t ch_read_blk(io_channel io, unsigned long block, int count, void* data) {
  return ch_read_blk64(io, block, count, data);
}
errcode_t ch_write_blk(io_channel io, unsigned long block, int count, const void* data) {
  return ch_write_blk64(io, block, count, data);
}
errcode_t ch_write_byte(io_channel io, unsigned long offset, int size, const void* data) {
  if (size < 0) return EXT2_ET_INVALID_ARGUMENT;
  return write_bytes(*channel_of(io)->state, offset, static_cast<uint64_t>(size), data);
}
errcode_t ch_flush(io_channel) { return 0; }
errcode_t ch_set_option(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }
errcode_t ch_discard(io_channel, unsigned long long, unsigned long long) { return EXT2_ET_UNIMPLEMENTED; }
errcode_t ch_zeroout(io_channel, unsigned long long, unsigned long long) { return EXT2_ET_UNIMPLEMENTED; }
errcode_t ch_readahead(io_channel, unsigned long long, unsigned long long) { return 0; }

io_manager manager() {
  static struct struct_io_manager m = [] {
    struct struct_io_manager init;
    std::memset(&init, 0, sizeof init);
    init.magic = EXT2_ET_MAGIC_IO_MANAGER;
    init.name = "arche block device";
    init.open = ch_open;
    init.close = ch_close;
    init.set_blksize = ch_set_blksize;
    init.read_blk = ch_read_blk;
    init.write_blk = ch_write_blk;
    init.flush = ch_flush;
    init.write_byte = ch_write_byte;
    init.set_option = ch_set_option;
    init.read_blk64 = ch_read_blk64;
    init.write_blk64 = ch_write_blk64;
    init.discard = ch_discard;
    init.cache_readahead = ch_readahead;
    init.zeroout = ch_zeroout;
    return init;
  }();
  return &m;
}

}  // namespace

errcode_t open_filesystem(const std::shared_ptr<IoState>& state, int flags, ext2_filsys* fs, blk64_t superblock,
                          unsigned block_size) {
  t_opening = state;
  errcode_t err = ext2fs_open2(state->device->filename().c_str(), nullptr, flags, static_cast<int>(superblock),
                               block_size, manager(), fs);
  t_opening.reset();
  return err;
}

std::string error_text(errcode_t code) {
  static const bool initialised = [] {
    initialize_ext2_error_table();
    return true;
  }();
  (void)initialised;
  const char* m = error_message(code);
  return m ? m : fmt::format("error {}", code);
}

}  // namespace arche::volume::ext
