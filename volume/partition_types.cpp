// Names of partition types, as fdisk and gdisk print them. Only the ones an admin
// of small servers meets; anything else is shown by its GUID or type byte.
#include <string>
#include <utility>

#include "volume/partition_table.h"

namespace arche::volume {

std::string gpt_type_name(const std::string& type_guid) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System"},
      {"21686148-6449-6e6f-744e-656564454649", "BIOS boot"},
      {"024dee41-33e7-11d3-9d69-0008c781f39f", "MBR partition scheme"},
      {"e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved"},
      {"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data"},
      {"de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery environment"},
      {"5808c8aa-7e8f-42e0-85d2-e1e90434cfb3", "Microsoft LDM metadata"},
      {"af9b60a0-1431-4f62-bc68-3311714a69ad", "Microsoft LDM data"},
      {"e75caf8f-f680-4cee-afa3-b001e56efc2d", "Microsoft Storage Spaces"},
      {"0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem"},
      {"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap"},
      {"e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM"},
      {"a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID"},
      {"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)"},
      {"44479540-f297-41b2-9af7-d131d5f0458a", "Linux root (x86)"},
      {"b921b045-1df0-41c3-af44-4c6f280d3fae", "Linux root (ARM-64)"},
      {"933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home"},
      {"3b8f8425-20e0-4f3b-907f-1a25a76f98e8", "Linux server data"},
      {"4d21b016-b534-45c2-a9fb-5c16e091fd2d", "Linux variable data"},
      {"7ec6f557-3bc5-4aca-b293-16ef5df639d1", "Linux temporary data"},
      {"bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot"},
      {"ca7d7ccb-63ed-4c53-861c-1742536059cc", "Linux LUKS"},
      {"7ffec5c9-2d00-49b7-8941-3ea10a5586b7", "Linux dm-crypt"},
      {"8da63339-0007-60c0-c436-083ac8230908", "Linux reserved"},
      {"48465300-0000-11aa-aa11-00306543ecac", "Apple HFS/HFS+"},
      {"7c3457ef-0000-11aa-aa11-00306543ecac", "Apple APFS"},
      {"83bd6b9d-7f41-11dc-be0b-001560b84f0f", "FreeBSD boot"},
      {"516e7cb4-6ecf-11d6-8ff8-00022d09712b", "FreeBSD disklabel"},
      {"516e7cb5-6ecf-11d6-8ff8-00022d09712b", "FreeBSD swap"},
      {"516e7cb6-6ecf-11d6-8ff8-00022d09712b", "FreeBSD UFS"},
      {"516e7cba-6ecf-11d6-8ff8-00022d09712b", "FreeBSD ZFS"},
      {"6a898cc3-1dd2-11b2-99a6-080020736631", "Solaris /usr & Apple ZFS"},
      {"aa31e02a-400f-11db-9590-000c2911d1b8", "VMware VMFS"},
      {"9d275380-40ad-11db-bf97-000c2911d1b8", "VMware kcore crash protection"},
  };
  for (const auto& [guid, name] : kTypes)
    if (type_guid == guid) return name;
  return {};
}

std::string mbr_type_name(uint8_t type) {
  switch (type) {
    case 0x01: return "FAT12";
    case 0x04: return "FAT16 <32M";
    case 0x05: return "Extended";
    case 0x06: return "FAT16";
    case 0x07: return "HPFS/NTFS/exFAT";
    case 0x0b: return "W95 FAT32";
    case 0x0c: return "W95 FAT32 (LBA)";
    case 0x0e: return "W95 FAT16 (LBA)";
    case 0x0f: return "W95 Ext'd (LBA)";
    case 0x11: return "Hidden FAT12";
    case 0x12: return "Compaq diagnostics";
    case 0x14: return "Hidden FAT16 <32M";
    case 0x16: return "Hidden FAT16";
    case 0x17: return "Hidden HPFS/NTFS";
    case 0x1b: return "Hidden W95 FAT32";
    case 0x1c: return "Hidden W95 FAT32 (LBA)";
    case 0x1e: return "Hidden W95 FAT16 (LBA)";
    case 0x27: return "Hidden NTFS WinRE";
    case 0x42: return "SFS / Windows dynamic disk";
    case 0x82: return "Linux swap / Solaris";
    case 0x83: return "Linux";
    case 0x85: return "Linux extended";
    case 0x86: return "NTFS volume set";
    case 0x87: return "NTFS volume set";
    case 0x8e: return "Linux LVM";
    case 0xa5: return "FreeBSD";
    case 0xa6: return "OpenBSD";
    case 0xa8: return "Darwin UFS";
    case 0xa9: return "NetBSD";
    case 0xaf: return "HFS / HFS+";
    case 0xbe: return "Solaris boot";
    case 0xbf: return "Solaris";
    case 0xde: return "Dell Utility";
    case 0xee: return "GPT";
    case 0xef: return "EFI (FAT-12/16/32)";
    case 0xfb: return "VMware VMFS";
    case 0xfc: return "VMware VMKCORE";
    case 0xfd: return "Linux raid autodetect";
    default: return {};
  }
}

}  // namespace arche::volume
