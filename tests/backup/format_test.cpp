// The repository's file formats: each round-trips, each refuses damage, truncation
// and newer major versions with a clear error, never a crash.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "backup/chunk_list.h"
#include "backup/frame.h"
#include "backup/index.h"
#include "backup/object.h"
#include "backup/pack.h"
#include "backup/repository.h"
#include "backup/snapshot.h"
#include "backup/store_local.h"
#include "backup/tree.h"
#include "core/bytes.h"
#include "core/error.h"
#include "tests/common/test_util.h"

namespace arche::backup {
namespace {

using arche::test::random_bytes;
using arche::test::TempDir;

ErrorCategory category_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.category();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCategory::internal;
}

TEST(BackupFrame, RoundTripsCompressibleAndIncompressibleData) {
  RepoKeys keys = RepoKeys::generate();
  for (bool random : {false, true}) {
    std::vector<uint8_t> plain = random ? random_bytes(300000, 3) : std::vector<uint8_t>(300000, 'a');
    Id id = keys.chunk_id(plain);
    std::vector<uint8_t> buf(frame_bound(plain.size()));
    size_t n = encode_frame(buf, keys, BlobKind::data, id, plain, 3);
    EXPECT_EQ(n % kFrameAlign, 0u);
    if (random) {
      EXPECT_LT(n, plain.size() + 200) << "incompressible data is stored as it is";
    } else {
      EXPECT_LT(n, plain.size() / 10) << "repetitive data must compress";
    }
    std::vector<uint8_t> frame(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n)), scratch;
    FrameHeader h = parse_frame_header(frame, "f");
    EXPECT_EQ(h.id, id);
    EXPECT_EQ(h.frame_length(), n);
    std::span<const uint8_t> back = open_frame(keys, frame, &id, scratch, "f");
    EXPECT_TRUE(std::equal(back.begin(), back.end(), plain.begin(), plain.end()));
  }
}

TEST(BackupFrame, EveryFlippedByteIsDetected) {
  RepoKeys keys = RepoKeys::generate();
  std::vector<uint8_t> plain = random_bytes(5000, 4);
  Id id = keys.chunk_id(plain);
  std::vector<uint8_t> buf(frame_bound(plain.size()));
  size_t n = encode_frame(buf, keys, BlobKind::data, id, plain, 3);
  buf.resize(n);
  // Header, nonce, ciphertext and tag: a flip anywhere that matters is refused.
  const size_t sealed_end = kFrameHeaderSize + load_le32(buf.data() + 8);
  for (size_t i = 0; i < sealed_end; i += 7) {
    std::vector<uint8_t> bad = buf, scratch;
    bad[i] ^= 0x01;
    EXPECT_THROW(open_frame(keys, bad, &id, scratch, "f"), Error) << "flip at " << i;
  }
  // Asking for another id is refused too.
  std::vector<uint8_t> copy = buf, scratch;
  Id other = Id::random();
  EXPECT_EQ(category_of([&] { open_frame(keys, copy, &other, scratch, "f"); }), ErrorCategory::corrupt);
  // And a frame of another repository's key does not open.
  RepoKeys stranger = RepoKeys::generate();
  copy = buf;
  EXPECT_EQ(category_of([&] { open_frame(stranger, copy, &id, scratch, "f"); }), ErrorCategory::corrupt);
}

TEST(BackupFrame, NewerFrameVersionIsUnsupported) {
  RepoKeys keys = RepoKeys::generate();
  std::vector<uint8_t> plain(100, 1), buf(frame_bound(100));
  buf.resize(encode_frame(buf, keys, BlobKind::data, keys.chunk_id(plain), plain, 1));
  buf[4] = 2;
  EXPECT_EQ(category_of([&] { parse_frame_header(buf, "f"); }), ErrorCategory::unsupported);
}

TEST(BackupObject, RoundTripsAndRefusesTamperingAndNewerVersions) {
  RepoKeys keys = RepoKeys::generate();
  std::vector<uint8_t> payload(5000, 'x');
  for (bool compress : {false, true}) {
    std::vector<uint8_t> sealed = seal_object(keys, "ARCHETST", {1, 3}, payload, compress);
    OpenedObject o = open_object(keys, sealed, "ARCHETST", 1, "t", 1 << 20);
    EXPECT_EQ(o.payload, payload);
    EXPECT_EQ(o.version.minor, 3);
    EXPECT_EQ(category_of([&] { open_object(keys, sealed, "ARCHEXXX", 1, "t", 1 << 20); }), ErrorCategory::format);
    auto bad = sealed;
    bad[bad.size() / 2] ^= 4;
    EXPECT_EQ(category_of([&] { open_object(keys, bad, "ARCHETST", 1, "t", 1 << 20); }), ErrorCategory::corrupt);
    bad = sealed;
    bad.resize(bad.size() - 1);
    EXPECT_EQ(category_of([&] { open_object(keys, bad, "ARCHETST", 1, "t", 1 << 20); }), ErrorCategory::corrupt);
  }
  std::vector<uint8_t> v2 = seal_object(keys, "ARCHETST", {2, 0}, payload, false);
  EXPECT_EQ(category_of([&] { open_object(keys, v2, "ARCHETST", 1, "t", 1 << 20); }), ErrorCategory::unsupported);
  // A compressed payload may not expand beyond what the caller allows.
  std::vector<uint8_t> big(1 << 20, 0);
  std::vector<uint8_t> bomb = seal_object(keys, "ARCHETST", {1, 0}, big, true);
  EXPECT_EQ(category_of([&] { open_object(keys, bomb, "ARCHETST", 1, "t", 1000); }), ErrorCategory::corrupt);
}

TEST(BackupPack, WriteReadFooterAndScanFrames) {
  TempDir dir;
  const std::string root = dir.path();
  LocalStore store(root);
  RepoKeys keys = RepoKeys::generate();
  Id repo_id = Id::random(), pack_id = Id::random();
  std::vector<std::vector<uint8_t>> blobs;
  PackInfo written;
  {
    PackWriter w(store, pack_id, repo_id, keys);
    for (int i = 0; i < 5; ++i) {
      blobs.push_back(random_bytes(1000 + 3000 * i, 10 + i));
      std::vector<uint8_t> buf(frame_bound(blobs.back().size()));
      size_t n = encode_frame(buf, keys, BlobKind::data, keys.chunk_id(blobs.back()), blobs.back(), 3);
      w.append(std::span(buf).first(n), keys.chunk_id(blobs.back()), BlobKind::data,
               static_cast<uint32_t>(blobs.back().size()));
    }
    written = w.finish();
  }
  const std::string path = root + "/" + pack_relative_path(pack_id);
  std::unique_ptr<ObjectReader> f = store.open(pack_relative_path(pack_id));
  PackInfo read = read_pack_index(*f, pack_id, repo_id, keys);
  ASSERT_EQ(read.entries.size(), 5u);
  EXPECT_EQ(read.size, f->size());
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(read.entries[i].id, keys.chunk_id(blobs[i]));
    EXPECT_EQ(read.entries[i].raw_length, blobs[i].size());
  }
  // The pack belongs to its repository and its name.
  EXPECT_EQ(category_of([&] { read_pack_index(*f, pack_id, Id::random(), keys); }), ErrorCategory::corrupt);
  EXPECT_EQ(category_of([&] { read_pack_index(*f, Id::random(), repo_id, keys); }), ErrorCategory::corrupt);
  // Streaming: every frame is found without the footer.
  size_t found = 0;
  scan_pack_frames(*f, "pack", [&](const FrameHeader& h, uint64_t offset, std::span<uint8_t>) {
    EXPECT_EQ(h.id, read.entries[found].id);
    EXPECT_EQ(offset, read.entries[found].offset);
    ++found;
  });
  EXPECT_EQ(found, 5u);
  // Truncated: the trailer is gone and that is said.
  f.reset();
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(read.size - 10)), 0);
  std::unique_ptr<ObjectReader> g = store.open(pack_relative_path(pack_id));
  EXPECT_EQ(category_of([&] { read_pack_index(*g, pack_id, repo_id, keys); }), ErrorCategory::corrupt);
  // A writer that is not committed leaves nothing behind.
  {
    PackWriter unfinished(store, Id::random(), repo_id, keys);
  }
  EXPECT_EQ(store.list("data/").size(), 1u);
  EXPECT_TRUE(store.list_temporaries().empty());
}

TEST(BackupPack, TrailerAndFooterDecodersRejectImpossibleLayouts) {
  PackTrailer t{48, 24 + 4 + 45 + 16, 1, 0};
  std::vector<uint8_t> ok = encode_pack_trailer(t);
  EXPECT_NO_THROW(decode_pack_trailer(ok, 48 + t.footer_length + kPackTrailerSize, "p"));
  EXPECT_THROW(decode_pack_trailer(ok, 48 + t.footer_length + kPackTrailerSize + 1, "p"), Error);
  t.footer_offset = 49;
  EXPECT_THROW(decode_pack_trailer(encode_pack_trailer(t), 1000, "p"), Error);
  // Footer entries overlapping, misaligned or beyond the frames are refused.
  PackEntry a{Id::random(), BlobKind::data, 48, 128, 10}, b{Id::random(), BlobKind::data, 160, 128, 10};
  EXPECT_THROW(decode_footer_entries(encode_footer_entries({a, b}), 1000, "p"), Error);  // overlap
  b.offset = 176;
  EXPECT_NO_THROW(decode_footer_entries(encode_footer_entries({a, b}), 1000, "p"));
  EXPECT_THROW(decode_footer_entries(encode_footer_entries({a, b}), 200, "p"), Error);  // beyond
  b.offset = 180;
  EXPECT_THROW(decode_footer_entries(encode_footer_entries({a, b}), 1000, "p"), Error);  // misaligned
  auto bytes = encode_footer_entries({a});
  bytes[0] = 200;  // count says more entries than there are
  EXPECT_THROW(decode_footer_entries(bytes, 1000, "p"), Error);
}

TEST(BackupIndex, PayloadRoundTripsAndMemoryStaysAt40BytesPerChunk) {
  static_assert(ChunkIndex::kBytesPerEntry == 40);
  std::vector<PackInfo> packs(3);
  for (auto& p : packs) {
    p.id = Id::random();
    p.size = 1000000;
    uint32_t off = 48;
    for (int i = 0; i < 10; ++i) {
      p.entries.push_back({Id::random(), BlobKind::data, off, 4096, 4000});
      off += 4096;
    }
  }
  std::vector<PackInfo> back = decode_index_payload(encode_index_payload(packs), "i");
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[1].entries[7].id, packs[1].entries[7].id);
  EXPECT_EQ(back[2].entries[9].offset, packs[2].entries[9].offset);

  ChunkIndex index;
  for (const auto& p : packs) index.add_pack(p);
  index.finalize();
  EXPECT_EQ(index.size(), 30u);
  auto where = index.find(packs[2].entries[3].id);
  ASSERT_TRUE(where);
  EXPECT_EQ(index.pack_id(where->pack), packs[2].id);
  EXPECT_EQ(where->offset, packs[2].entries[3].offset);
  EXPECT_EQ(where->length, 4096u);
  EXPECT_FALSE(index.find(Id::random()));
  // Claims: a new id once, an existing one never.
  Id fresh = Id::random();
  EXPECT_TRUE(index.claim(fresh));
  EXPECT_FALSE(index.claim(fresh));
  EXPECT_FALSE(index.contains(fresh)) << "claimed but not written is not present";
  index.place(fresh, {1, 32u << 20 >> 1, 8u << 20 >> 1});
  EXPECT_TRUE(index.contains(fresh));
  EXPECT_FALSE(index.claim(packs[0].entries[0].id));
  // Many placed chunks are folded into the 40-byte vector.
  for (int i = 0; i < 10000; ++i) {
    Id id = Id::random();
    ASSERT_TRUE(index.claim(id));
    index.place(id, {2, 16u * static_cast<uint32_t>(i % 1000), 4096});
  }
  EXPECT_EQ(index.size(), 30u + 1 + 10000);
  auto truncated = encode_index_payload(packs);
  truncated.resize(truncated.size() - 3);
  EXPECT_THROW(decode_index_payload(truncated, "i"), Error);
}

TEST(BackupTree, RoundTripsAndRejectsDangerousNames) {
  Tree t;
  Node a;
  a.name = "a file with spaces\nand newline \xff\xfe";
  a.type = NodeType::file;
  a.size = 10;
  a.chunks = {{Id::random(), 10}};
  a.chunk_count = 1;
  a.xattrs = {{"user.k", std::string("v\0w", 3)}};
  Node b;
  b.name = "b";
  b.type = NodeType::symlink;
  b.target = "../../etc/passwd";
  Node c;
  c.name = "c";
  c.type = NodeType::dir;
  c.subtree = {Id::random()};
  t.nodes = {a, b, c};
  Tree back = decode_tree(encode_tree(t), "t");
  ASSERT_EQ(back.nodes.size(), 3u);
  EXPECT_EQ(back.nodes[0].name, a.name);
  EXPECT_EQ(back.nodes[0].xattrs, a.xattrs);
  EXPECT_EQ(back.nodes[1].target, b.target);
  EXPECT_EQ(back.nodes[2].subtree, c.subtree);
  for (const char* bad : {"..", ".", "x/y", ""}) {
    Tree evil;
    Node n;
    n.name = bad;
    evil.nodes = {n};
    EXPECT_THROW(decode_tree(encode_tree(evil), "t"), Error) << "name '" << bad << "'";
  }
  Tree unsorted;
  unsorted.nodes = {c, b};
  EXPECT_THROW(decode_tree(encode_tree(unsorted), "t"), Error);
  Node wrong = b;
  wrong.chunk_count = 1;
  wrong.chunks = {{Id::random(), 1}};
  Tree mismatched;
  mismatched.nodes = {wrong};
  EXPECT_THROW(decode_tree(encode_tree(mismatched), "t"), Error) << "a symlink with content";
}

TEST(BackupChunkList, RoundTripsAndBoundsItsEntries) {
  std::vector<Id> ids(100);
  for (auto& id : ids) id = Id::random();
  ids[50] = Id{};  // a hole
  EXPECT_EQ(decode_image_list(encode_image_list(ids), "l"), ids);
  std::vector<ChunkRef> refs = {{Id::random(), 5}, {Id::random(), 7}};
  EXPECT_EQ(decode_file_list(encode_file_list(refs), "l"), refs);
  EXPECT_THROW(decode_image_list(encode_file_list(refs), "l"), Error);
  std::vector<ChunkRef> zero = {{Id::random(), 0}};
  EXPECT_THROW(decode_file_list(encode_file_list(zero), "l"), Error);
}

TEST(BackupSnapshot, ManifestRoundTripsAndMissingFieldsAreCorrupt) {
  Snapshot s;
  s.name = "nightly-2026-11-21";
  s.time_ns = 1763700000123456789;
  s.host = "server";
  s.tags = {"vm", "nightly"};
  s.paths = {"/etc"};
  s.tree = {Id::random()};
  ImageRecord i;
  i.name = "disk.qcow2";
  i.size = 3u << 20;
  i.chunk_size = 1u << 20;
  i.chunk_count = 3;
  i.lists = {Id::random()};
  i.layers = {{"/vm/disk.qcow2", "qcow2", 3u << 20, 1000, 1, 2, 3, 4, true}};
  s.images = {i};
  Snapshot back = decode_snapshot_payload(encode_snapshot_payload(s), "s");
  EXPECT_EQ(back.name, s.name);
  EXPECT_EQ(back.time_ns, s.time_ns);
  EXPECT_EQ(back.tags, s.tags);
  EXPECT_EQ(back.tree, s.tree);
  ASSERT_EQ(back.images.size(), 1u);
  EXPECT_TRUE(back.images[0].layers[0].same_file(i.layers[0]));
  Json j = snapshot_to_json(s);
  j.erase("host");
  EXPECT_EQ(category_of([&] { snapshot_from_json(j, "s"); }), ErrorCategory::corrupt);
  j = snapshot_to_json(s);
  j["images"][0]["chunk_count"] = 7;  // disagrees with size
  EXPECT_EQ(category_of([&] { snapshot_from_json(j, "s"); }), ErrorCategory::corrupt);
  j = snapshot_to_json(s);
  j["format"] = 2;
  EXPECT_EQ(category_of([&] { snapshot_from_json(j, "s"); }), ErrorCategory::unsupported);
  std::string text = "{not json";
  EXPECT_EQ(category_of([&] {
              decode_snapshot_payload(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), "s");
            }),
            ErrorCategory::corrupt);
}

TEST(BackupConfig, SettingsAreSealedAndValidated) {
  RepoKeys keys = RepoKeys::generate();
  RepoConfigHeader h;
  h.repo_id = Id::random();
  RepoSettings s;
  s.compression_level = 7;
  std::vector<uint8_t> bytes = encode_config(h, s, keys);
  EXPECT_EQ(decode_config_header(bytes, "c").repo_id, h.repo_id);
  EXPECT_EQ(decode_config_settings(bytes, keys, "c").compression_level, 7);
  EXPECT_EQ(category_of([&] { decode_config_settings(bytes, RepoKeys::generate(), "c"); }), ErrorCategory::corrupt);
  RepoSettings bad;
  bad.image_chunk_size = 3000;
  EXPECT_EQ(category_of([&] { validate_settings(bad, ErrorCategory::usage); }), ErrorCategory::usage);
  OpenedRecord rec = open_record(bytes, "ARCHEREP", 1, "c");
  std::vector<uint8_t> v2 = seal_record("ARCHEREP", {2, 0}, rec.payload);
  EXPECT_EQ(category_of([&] { decode_config_header(v2, "c"); }), ErrorCategory::unsupported);
}

TEST(BackupRepoRef, SplitsAtTheLastDoubleColon) {
  EXPECT_EQ(split_repo_ref("/srv/repo::nightly", true), std::make_pair(std::string("/srv/repo"), std::string("nightly")));
  EXPECT_EQ(split_repo_ref("/srv/repo", false).first, "/srv/repo");
  EXPECT_THROW(split_repo_ref("/srv/repo", true), Error);
  EXPECT_THROW(split_repo_ref("/srv/repo::", true), Error);
}

}  // namespace
}  // namespace arche::backup
