// libFuzzer target for the parsers of backup repository files: key slots, config,
// pack headers, trailers, footers and frames, whole packs (footer and scan), index
// files, trees, chunk lists, snapshot manifests, locks, sealed objects, plus round
// trips of frames and FastCDC's invariants. The first byte picks the parser; the
// rest is its input. Any input must end in success or an arche::Error.
//
// The target writes its own seed corpus (valid encodings of every structure, made
// with a fixed key) into an empty corpus directory, so it starts from real formats.
#include <boost/filesystem.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "backup/chunk_list.h"
#include "backup/fastcdc.h"
#include "backup/frame.h"
#include "backup/index.h"
#include "backup/key_slot.h"
#include "backup/lock.h"
#include "backup/object.h"
#include "backup/pack.h"
#include "backup/repository.h"
#include "backup/snapshot.h"
#include "backup/store_local.h"
#include "backup/tree.h"
#include "core/error.h"
#include "tests/fuzz/self_seeding.h"

using namespace arche;
using namespace arche::backup;

namespace {

using arche::fuzz::write_seed;

enum Target : uint8_t {
  kKeySlot,
  kConfig,
  kTrailer,
  kFooter,
  kIndex,
  kTree,
  kImageList,
  kFileList,
  kSnapshot,
  kLock,
  kFrame,
  kObject,
  kPackFile,
  kFrameRoundTrip,
  kCdc,
  kTargetCount
};

const RepoKeys& keys() {
  static const RepoKeys k([] {
    std::vector<uint8_t> master(kKeySize, 0x42);
    return master;
  }());
  return k;
}

Id repo_id() {
  Id id;
  id.bytes.fill(0x17);
  return id;
}

// A pack held in the fuzzer's input (packs are read through the Store's readers).
class SpanReader final : public ObjectReader {
 public:
  explicit SpanReader(std::span<const uint8_t> data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  void read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > data_.size() || out.size() > data_.size() - offset) fail(ErrorCategory::format, "fuzz: truncated");
    std::memcpy(out.data(), data_.data() + offset, out.size());
  }

 private:
  std::span<const uint8_t> data_;
};

void run(uint8_t target, std::span<const uint8_t> d) {
  switch (target % kTargetCount) {
    case kKeySlot: {
      KeySlot s = decode_key_slot(d, "fuzz");
      // Unwrapping costs an argon2 run: only for slots with the cheapest parameters.
      if (s.kdf.opslimit == 1 && s.kdf.memlimit <= (8u << 20))
        (void)unwrap_key_slot(s, d.first(std::min<size_t>(d.size(), 8)));
      break;
    }
    case kConfig:
      decode_config_header(d, "fuzz");
      decode_config_settings(d, keys(), "fuzz");
      break;
    case kTrailer:
      if (d.size() >= kPackTrailerSize) decode_pack_trailer(d.first(kPackTrailerSize), d.size(), "fuzz");
      break;
    case kFooter: decode_footer_entries(d, d.size() * 16, "fuzz"); break;
    case kIndex: decode_index_payload(d, "fuzz"); break;
    case kTree: decode_tree(d, "fuzz"); break;
    case kImageList: decode_image_list(d, "fuzz"); break;
    case kFileList: decode_file_list(d, "fuzz"); break;
    case kSnapshot: decode_snapshot_payload(d, "fuzz"); break;
    case kLock: decode_lock_payload(d, "fuzz"); break;
    case kFrame: {
      std::vector<uint8_t> copy(d.begin(), d.end()), scratch;
      parse_frame_header(copy, "fuzz");
      open_frame(keys(), copy, nullptr, scratch, "fuzz");
      break;
    }
    case kObject: open_object(keys(), d, "ARCHETST", 1, "fuzz", 1 << 20); break;
    case kPackFile: {
      SpanReader pack(d);
      try {
        read_pack_index(pack, Id{}, repo_id(), keys());
      } catch (const Error&) {
      }
      scan_pack_frames(pack, "fuzz", [](const FrameHeader&, uint64_t, std::span<uint8_t> frame) {
        std::vector<uint8_t> scratch;
        try {
          open_frame(keys(), frame, nullptr, scratch, "fuzz");
        } catch (const Error&) {
        }
      });
      break;
    }
    case kFrameRoundTrip: {
      if (d.size() > kMaxBlobSize) break;
      std::vector<uint8_t> buf(frame_bound(d.size())), scratch;
      const Id id = keys().chunk_id(d);
      size_t n = encode_frame(buf, keys(), BlobKind::data, id, d, 1);
      buf.resize(n);
      std::span<const uint8_t> back = open_frame(keys(), buf, &id, scratch, "fuzz");
      if (back.size() != d.size() || !std::equal(back.begin(), back.end(), d.begin())) std::abort();
      break;
    }
    case kCdc: {
      static const FastCdc cdc({64, 256, 1024}, std::vector<uint8_t>(64, 9));
      size_t total = 0;
      std::span<const uint8_t> rest = d;
      while (!rest.empty()) {
        size_t n = cdc.cut(rest, true);
        if (n == 0 || n > 1024 || (n < 64 && n != rest.size())) std::abort();
        total += n;
        rest = rest.subspan(n);
      }
      if (total != d.size()) std::abort();
      break;
    }
  }
}

// Valid encodings of every structure, made with the fixed key.
void write_seeds(const std::string& dir) {
  const std::string pass = "fuzz";
  KeySlot slot = make_key_slot(repo_id(), keys().master(),
                               std::span(reinterpret_cast<const uint8_t*>(pass.data()), pass.size()), {1, 8u << 20});
  write_seed(dir, "keyslot", kKeySlot, encode_key_slot(slot));
  RepoConfigHeader h;
  h.repo_id = repo_id();
  write_seed(dir, "config", kConfig, encode_config(h, RepoSettings{}, keys()));
  PackInfo p;
  p.id = Id::random();
  p.size = 4096;
  p.entries = {{Id::random(), BlobKind::data, 48, 128, 100}, {Id::random(), BlobKind::tree, 176, 256, 300}};
  write_seed(dir, "footer", kFooter, encode_footer_entries(p.entries));
  write_seed(dir, "index", kIndex, encode_index_payload({p, p}));
  write_seed(dir, "trailer", kTrailer, encode_pack_trailer({48, 24 + 4 + 45 + 16, 1, 7}));
  Tree t;
  Node file;
  file.name = "datei.txt";
  file.size = 5;
  file.chunks = {{Id::random(), 5}};
  file.chunk_count = 1;
  file.xattrs = {{"user.a", "b"}};
  Node dirnode;
  dirnode.name = "sub";
  dirnode.type = NodeType::dir;
  dirnode.subtree = {Id::random()};
  Node link;
  link.name = "z";
  link.type = NodeType::symlink;
  link.target = "datei.txt";
  t.nodes = {file, dirnode, link};
  write_seed(dir, "tree", kTree, encode_tree(t));
  std::vector<Id> ids = {Id::random(), Id{}, Id::random()};
  write_seed(dir, "imagelist", kImageList, encode_image_list(ids));
  std::vector<ChunkRef> refs = {{Id::random(), 100}, {Id::random(), 200}};
  write_seed(dir, "filelist", kFileList, encode_file_list(refs));
  Snapshot s;
  s.name = "nightly";
  s.host = "h";
  s.paths = {"/etc"};
  s.tree = {Id::random()};
  ImageRecord img;
  img.name = "disk.qcow2";
  img.size = 3u << 20;
  img.chunk_size = 1u << 20;
  img.chunk_count = 3;
  img.lists = {Id::random()};
  img.layers = {{"/vm/disk.qcow2", "qcow2", 3u << 20, 1, 2, 3, 4, 5, true}};
  s.images = {img};
  write_seed(dir, "snapshot", kSnapshot, encode_snapshot_payload(s));
  LockInfo l;
  l.host = "h";
  l.pid = 1;
  l.command = "backup create";
  write_seed(dir, "lock", kLock, encode_lock_payload(l));
  std::vector<uint8_t> plain(3000, 'x'), buf(frame_bound(3000));
  buf.resize(encode_frame(buf, keys(), BlobKind::data, keys().chunk_id(plain), plain, 3));
  write_seed(dir, "frame", kFrame, buf);
  write_seed(dir, "object", kObject, seal_object(keys(), "ARCHETST", {1, 0}, plain, true));
  write_seed(dir, "roundtrip", kFrameRoundTrip, plain);
  write_seed(dir, "cdc", kCdc, std::vector<uint8_t>(5000, 1));
  // A whole pack.
  char templ[] = "/tmp/backup-fuzz-XXXXXX";
  if (mkdtemp(templ)) {
    std::string root = templ;
    Id pack_id = Id::random();
    boost::filesystem::create_directories(root + "/data/" + pack_id.hex().substr(0, 2));
    try {
      LocalStore store(root);
      PackWriter w(store, pack_id, repo_id(), keys());
      w.append(buf, keys().chunk_id(plain), BlobKind::data, 3000);
      w.finish();
      std::ifstream in(root + "/" + pack_relative_path(pack_id), std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
      write_seed(dir, "pack", kPackFile, bytes);
    } catch (const Error&) {
    }
    boost::filesystem::remove_all(root);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  arche::fuzz::seed_empty_corpus(*argc, *argv, write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (64u << 10)) return 0;  // targets.sh: -max_len
  try {
    run(data[0], std::span(data + 1, size - 1));
  } catch (const Error&) {
  }
  return 0;
}
