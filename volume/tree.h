// The tree of what one or more disks hold: disk -> partitions -> LVM2 volume
// groups -> logical volumes -> file systems, as one flat list of volumes that
// callers list and address (volume_path.h), and the file system of each volume,
// opened on first use.
//
// This is the API that `arche image ls|extract`, single-file restore from backups
// and P2V share. Two implementations: explore() parses in this process (tests,
// fuzzing, trusted input); Sandbox::explore() (sandbox.h) parses in a child
// process without privileges and hands back a Tree that forwards every call, so
// callers cannot tell the difference except that a crash of a parser there is one
// error here.
//
// Several disks make one tree when they belong together: the disks of one VM (a
// volume group may span them). Partition names are per disk ("p1" of disk 0 and
// "p1" of disk 1 are different volumes); volume groups are global.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image/block_device.h"
#include "volume/filesystem.h"

namespace arche::volume {

struct Disk {
  std::string name;  // for listings and messages: the image file name
  std::shared_ptr<image::BlockDevice> device;
};

enum class VolumeKind : uint8_t {
  disk,            // a whole disk (name ""); holds a partition table, a PV, a file system or nothing known
  partition,       // "p1"
  volume_group,    // "vg0": no data of its own; `pvs` says where its physical volumes are
  logical_volume,  // "vg0/root"
};
const char* to_string(VolumeKind kind);  // "disk", "partition", "volume-group", "logical-volume"

// Where a run of a volume's bytes lies on the disks: `length` bytes, on one area
// one after the other (a disk, a partition, a linear LV segment), or `stripe_size`
// bytes to each area in turn (a striped LV segment), as views.h's Segment.
struct PlacedArea {
  uint32_t disk = 0;
  uint64_t offset = 0;  // bytes from the start of that disk
};
struct Placement {
  uint64_t length = 0;
  std::vector<PlacedArea> areas;
  uint64_t stripe_size = 0;  // bytes; only for several areas
};

struct VolumeInfo {
  VolumeKind kind = VolumeKind::disk;
  uint32_t disk = 0;  // index of the disk it lies on (a VG: the disk of its first PV found)
  std::string name;   // the address of the volume within its disk: "", "p1", "vg0", "vg0/root"
  uint64_t offset = 0;  // partitions: bytes from the start of the disk; others 0
  uint64_t size = 0;    // bytes

  // Partitions: the table's facts (partition_table.h); disks: scheme of their table.
  std::string scheme;  // "gpt", "mbr" or ""
  std::string type_id, type_name, part_name, part_uuid;
  // Volume groups: where the PVs are ("disk.raw p2", "disk2.raw"); the VG uuid is in `uuid`.
  std::vector<std::string> pvs;

  // What the volume holds (probe.h): "ext4", "ntfs", "LVM2_member", "gpt", ...
  std::string content;
  std::string label, uuid;
  bool browsable = false;    // holds a file system arche reads: Tree::filesystem() opens it
  std::string unsupported;   // why it cannot be browsed, when it holds something
  std::vector<std::string> notes;  // damage and oddities found while reading it

  // For P2V's used-block maps: the volume's bytes on the disks, segment after
  // segment (disks, partitions, readable LVs; empty for the others); and for an
  // LVM2 PV whose VG was assembled, `lvm_assembled` and the bytes of the PV that
  // must be copied as they are (relative to the PV): LVM's label and metadata
  // (outside the physical extents) and the extents of LVs without a placement
  // (thin pools, RAID images, snapshots). Free extents are in neither.
  std::vector<Placement> placement;
  bool lvm_assembled = false;
  std::vector<ByteRange> lvm_keep;
};

class Tree {
 public:
  virtual ~Tree() = default;

  // The disks, in the order given; each followed by its partitions (by number),
  // then the volume groups, each followed by its logical volumes.
  virtual const std::vector<VolumeInfo>& volumes() const = 0;
  virtual const std::vector<std::string>& disk_names() const = 0;

  // The file system of volumes()[index], opened on first use and kept for the life
  // of the tree. Throws unsupported when the volume is not browsable, and whatever
  // the reader throws (format, corrupt) when it fails to open.
  virtual Filesystem& filesystem(size_t index) = 0;
};

// Reads the partition tables, LVM metadata and file system superblocks of the
// disks in this process. Damage in one volume is recorded in its notes and does
// not stop the others; only unreadable disks (I/O errors) throw.
std::unique_ptr<Tree> explore(std::vector<Disk> disks);

}  // namespace arche::volume
