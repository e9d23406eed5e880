// OVA import: a package built here (qemu-img streamOptimized disks, a hand-written
// OVF, tar) imports into disks equal to the sources and a TOML configuration with
// the right CPUs, memory, disks and NICs; damaged packages fail cleanly and leave
// nothing behind.
#include <gtest/gtest.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/json.h"
#include "image/ova/ovf.h"
#include "image/ova/tar_index.h"
#include "tests/image/vmdk_test_util.h"

namespace arche::test {
namespace fs = boost::filesystem;
namespace {

std::string ovf_text(const std::string& disk1, const std::string& disk2, bool second_nic_mac = false) {
  return fmt::format(R"(<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:href="{}" ovf:id="file1"/>
    <File ovf:href="{}" ovf:id="file2"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="24" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="8388608" ovf:diskId="vmdisk2" ovf:fileRef="file2"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
    <Network ovf:name="Backup LAN"><Description>backup</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="web01">
    <Info>A virtual machine</Info>
    <Name>web01</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType></System>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>2048MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>1</rasd:AddressOnParent><rasd:ElementName>Hard disk 2</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Address>52:54:00:12:34:56</rasd:Address><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
      <Item>{}<rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>Backup LAN</rasd:Connection><rasd:ElementName>Network adapter 2</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
)",
                     disk1, disk2, second_nic_mac ? "<rasd:Address>00-50-56-AB-CD-EF</rasd:Address>" : "");
}

class OvaImport : public ::testing::Test {
 protected:
  void SetUp() override {
    ARCHE_REQUIRE_PROGRAM("qemu-img");
    ARCHE_REQUIRE_PROGRAM("tar");
    pkg_ = dir_.file("pkg");
    fs::create_directories(pkg_);
    src1_ = dir_.file("src1.raw");
    src2_ = dir_.file("src2.raw");
    make_source(src1_, 24 << 20, {20 << 20});
    make_source(src2_, 8 << 20);
    must({"qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src1_, pkg_ + "/web01-disk1.vmdk"});
    must({"qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src2_, pkg_ + "/web01-disk2.vmdk"});
    write_text(pkg_ + "/web01.ovf", ovf_text("web01-disk1.vmdk", "web01-disk2.vmdk"));
    ova_ = dir_.file("web01.ova");
    must({"tar", "-C", pkg_, "-cf", ova_, "web01.ovf", "web01-disk1.vmdk", "web01-disk2.vmdk"});
  }
  static void write_text(const std::string& path, const std::string& text) {
    write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
  }
  // Nothing in `d` but what was there before (hidden temporaries included).
  static size_t entries(const std::string& d) {
    if (!fs::exists(d)) return 0;
    return static_cast<size_t>(std::distance(fs::directory_iterator(d), fs::directory_iterator()));
  }
  TempDir dir_;
  std::string pkg_, src1_, src2_, ova_;
};

TEST_F(OvaImport, DisksAndConfiguration) {
  const std::string out = dir_.file("vms");
  CommandResult r = arche({"image", "import", "--json", ova_, out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["machines"].size(), 1u);
  EXPECT_EQ(j["machines"][0]["name"], "web01");

  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src1_, out + "/web01-disk1.qcow2"});
  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src2_, out + "/web01-disk2.qcow2"});
  must({"qemu-img", "check", out + "/web01-disk1.qcow2"});

  toml::table config = toml::parse_file(out + "/web01.toml");
  EXPECT_EQ(config["name"].value_or(std::string()), "web01");
  EXPECT_EQ(config["cpus"].value_or(int64_t{0}), 2);
  EXPECT_EQ(config["memory"].value_or(std::string()), "2048M");
  toml::array* disks = config["disk"].as_array();
  ASSERT_NE(disks, nullptr);
  ASSERT_EQ(disks->size(), 2u);
  EXPECT_EQ((*disks)[0].as_table()->at("path").value_or(std::string()), "web01-disk1.qcow2");
  EXPECT_EQ((*disks)[1].as_table()->at("path").value_or(std::string()), "web01-disk2.qcow2");
  EXPECT_EQ((*disks)[0].as_table()->at("format").value_or(std::string()), "qcow2");
  EXPECT_EQ((*disks)[0].as_table()->at("readonly").value_or(true), false);
  toml::array* nets = config["net"].as_array();
  ASSERT_NE(nets, nullptr);
  ASSERT_EQ(nets->size(), 2u);
  const toml::table& n1 = *(*nets)[0].as_table();
  const toml::table& n2 = *(*nets)[1].as_table();
  EXPECT_EQ(n1.at("model").value_or(std::string()), "virtio");
  EXPECT_EQ(n1.at("mac").value_or(std::string()), "52:54:00:12:34:56");
  EXPECT_EQ(n1.at("network").value_or(std::string()), "VM Network");
  EXPECT_FALSE(n2.contains("mac"));  // the OVF gives none
  EXPECT_EQ(n2.at("network").value_or(std::string()), "Backup LAN");
  EXPECT_EQ(entries(out), 3u);  // two disks and the configuration, no leftovers

  // A second import refuses to overwrite, and changes nothing.
  CommandResult again = arche({"image", "import", ova_, out});
  EXPECT_ONE_CLEAR_ERROR(again);
  EXPECT_EQ(entries(out), 3u);
}

TEST_F(OvaImport, OtherFormatsAndAPlainOvf) {
  const std::string out = dir_.file("raw");
  ASSERT_EQ(arche({"image", "import", "-O", "raw", ova_, out}).exit_code, 0);
  must({"qemu-img", "compare", "-f", "raw", "-F", "raw", src1_, out + "/web01-disk1.raw"});
  const std::string out2 = dir_.file("vmdk");
  ASSERT_EQ(arche({"image", "import", "-O", "vmdk", "-o", "subformat=streamOptimized", ova_, out2}).exit_code, 0);
  must({"qemu-img", "compare", "-f", "raw", "-F", "vmdk", src2_, out2 + "/web01-disk2.vmdk"});
  // An .ovf with its disks beside it, with a MAC written the Windows way.
  write_text(pkg_ + "/web01.ovf", ovf_text("web01-disk1.vmdk", "web01-disk2.vmdk", true));
  const std::string out3 = dir_.file("plain");
  CommandResult r = arche({"image", "import", pkg_ + "/web01.ovf", out3});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src1_, out3 + "/web01-disk1.qcow2"});
  toml::table config = toml::parse_file(out3 + "/web01.toml");
  EXPECT_EQ(config["net"][1]["mac"].value_or(std::string()), "00:50:56:ab:cd:ef");
}

TEST_F(OvaImport, CutArchiveLeavesNothing) {
  const uint64_t size = fs::file_size(ova_);
  for (uint64_t cut : {size * 3 / 4, size / 2, uint64_t{5000}, uint64_t{300}}) {
    const std::string cut_ova = dir_.file("cut.ova"), out = dir_.file("out-cut");
    fs::copy_file(ova_, cut_ova, fs::copy_options::overwrite_existing);
    fs::resize_file(cut_ova, cut);
    CommandResult r = arche({"image", "import", cut_ova, out});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_FALSE(fs::exists(out)) << "cut at " << cut;
  }
}

TEST_F(OvaImport, MissingDiskBadXmlAndDamagedDiskLeaveNothing) {
  const std::string existing = dir_.file("existing");
  fs::create_directories(existing);
  auto expect_clean_failure = [&](const std::string& ova, const std::string& words) {
    CommandResult r = arche({"image", "import", ova, existing});
    EXPECT_ONE_CLEAR_ERROR(r);
    EXPECT_NE(r.err.find(words), std::string::npos) << r.err;
    EXPECT_EQ(entries(existing), 0u) << "files left behind";
  };
  // The OVF names a disk the archive lacks.
  const std::string missing = dir_.file("missing.ova");
  must({"tar", "-C", pkg_, "-cf", missing, "web01.ovf", "web01-disk1.vmdk"});
  expect_clean_failure(missing, "not in the archive");
  // XML that does not parse.
  std::string xml = ovf_text("web01-disk1.vmdk", "web01-disk2.vmdk");
  write_text(pkg_ + "/web01.ovf", xml.substr(0, xml.size() / 2));
  const std::string bad = dir_.file("bad.ova");
  must({"tar", "-C", pkg_, "-cf", bad, "web01.ovf", "web01-disk1.vmdk", "web01-disk2.vmdk"});
  expect_clean_failure(bad, "XML");
  // The second disk is damaged: the first, already converted, must not remain.
  write_text(pkg_ + "/web01.ovf", xml);
  std::vector<uint8_t> disk2 = read_file(pkg_ + "/web01-disk2.vmdk");
  for (size_t i = 70000; i < 74000 && i < disk2.size(); ++i) disk2[i] ^= 0x5a;
  write_file(pkg_ + "/web01-disk2.vmdk", disk2);
  const std::string damaged = dir_.file("damaged.ova");
  must({"tar", "-C", pkg_, "-cf", damaged, "web01.ovf", "web01-disk1.vmdk", "web01-disk2.vmdk"});
  expect_clean_failure(damaged, "vmdisk2");
}

TEST_F(OvaImport, ManifestIsVerified) {
  ARCHE_REQUIRE_PROGRAM("sha256sum");
  // A manifest as ovftool writes it: SHA256(name)= digest, for the OVF and the disks.
  auto digest = [&](const std::string& name) {
    std::string out = must({"sha256sum", pkg_ + "/" + name}).out;
    return out.substr(0, 64);
  };
  auto write_manifest = [&] {
    std::string mf;
    for (const char* name : {"web01.ovf", "web01-disk1.vmdk", "web01-disk2.vmdk"})
      mf += fmt::format("SHA256({})= {}\n", name, digest(name));
    write_text(pkg_ + "/web01.mf", mf);
  };
  write_manifest();
  const std::string good = dir_.file("good.ova");
  must({"tar", "-C", pkg_, "-cf", good, "web01.ovf", "web01.mf", "web01-disk1.vmdk", "web01-disk2.vmdk"});
  CommandResult r = arche({"image", "import", good, dir_.file("good")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  must({"qemu-img", "compare", "-f", "raw", "-F", "qcow2", src2_, dir_.file("good") + "/web01-disk2.qcow2"});

  // One flipped byte in a part of disk 2 that still decompresses: only the manifest notices.
  std::vector<uint8_t> disk2 = read_file(pkg_ + "/web01-disk2.vmdk");
  disk2[600] ^= 1;  // inside the embedded descriptor's padding
  write_file(pkg_ + "/web01-disk2.vmdk", disk2);
  const std::string altered = dir_.file("altered.ova");
  must({"tar", "-C", pkg_, "-cf", altered, "web01.ovf", "web01.mf", "web01-disk1.vmdk", "web01-disk2.vmdk"});
  const std::string out = dir_.file("altered");
  r = arche({"image", "import", altered, out});
  EXPECT_ONE_CLEAR_ERROR(r);
  EXPECT_NE(r.err.find("manifest"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  // The same check for a plain .ovf with its manifest beside it.
  r = arche({"image", "import", pkg_ + "/web01.ovf", dir_.file("plain")});
  EXPECT_ONE_CLEAR_ERROR(r);
  write_manifest();
  r = arche({"image", "import", pkg_ + "/web01.ovf", dir_.file("plain")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Ovf, ParsesUnitsMacsAndCollections) {
  using namespace image::ova;
  EXPECT_EQ(allocation_unit_bytes("byte * 2^20", "t"), 1u << 20);
  EXPECT_EQ(allocation_unit_bytes("byte*2^30", "t"), 1ull << 30);
  EXPECT_EQ(allocation_unit_bytes("byte * 10^3", "t"), 1000u);
  EXPECT_EQ(allocation_unit_bytes("MegaBytes", "t"), 1u << 20);
  EXPECT_THROW(allocation_unit_bytes("byte * 2^99", "t"), Error);
  EXPECT_THROW(allocation_unit_bytes("furlongs", "t"), Error);
  EXPECT_EQ(normalize_mac("00-50-56-AB-CD-EF"), "00:50:56:ab:cd:ef");
  EXPECT_EQ(normalize_mac("0050.56ab.cdef"), "00:50:56:ab:cd:ef");
  EXPECT_EQ(normalize_mac("00:50:56"), "");
  const char* xml = R"(<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" xmlns:rasd="r">
    <ovf:VirtualSystemCollection ovf:id="c"><ovf:VirtualSystem ovf:id="a"><ovf:VirtualHardwareSection>
      <ovf:Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity>
        <rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits></ovf:Item>
    </ovf:VirtualHardwareSection></ovf:VirtualSystem>
    <ovf:VirtualSystem ovf:id="b"><ovf:Name>bee</ovf:Name><ovf:VirtualHardwareSection/></ovf:VirtualSystem>
    </ovf:VirtualSystemCollection></ovf:Envelope>)";
  OvfEnvelope env = parse_ovf(xml, "t");
  ASSERT_EQ(env.systems.size(), 2u);
  EXPECT_EQ(env.systems[0].name, "a");
  EXPECT_EQ(env.systems[0].memory, 1ull << 30);
  EXPECT_EQ(env.systems[1].name, "bee");
  EXPECT_THROW(parse_ovf("<Envelope><VirtualSystem>", "t"), Error);
  EXPECT_THROW(parse_ovf("<NotOvf/>", "t"), Error);
}

TEST(TarIndex, ReadsWhatTarWrites) {
  ARCHE_REQUIRE_PROGRAM("tar");
  TempDir dir;
  fs::create_directories(dir.file("in/sub"));
  const std::string long_name = std::string(150, 'n') + ".vmdk";  // beyond ustar's 100 characters
  write_file(dir.file("in/" + long_name), random_bytes(1000, 1));
  write_file(dir.file("in/sub/b.ovf"), random_bytes(513, 2));
  for (const char* fmt : {"gnu", "pax", "ustar"}) {
    const std::string t = dir.file(std::string("a-") + fmt + ".tar");
    if (std::string(fmt) == "ustar") {
      must({"tar", "-C", dir.file("in"), "--format=ustar", "-cf", t, "sub/b.ovf"});
    } else {
      must({"tar", "-C", dir.file("in"), std::string("--format=") + fmt, "-cf", t, long_name, "sub/b.ovf"});
    }
    File f = File::open(t, OpenMode::read_only);
    auto members = image::ova::read_tar_index(f, t);
    bool found_long = false, found_sub = false;
    for (const auto& m : members) {
      if (m.name == long_name) {
        found_long = true;
        EXPECT_EQ(m.size, 1000u);
        std::vector<uint8_t> got(m.size);
        f.read_exact(m.offset, got);
        EXPECT_EQ(got, random_bytes(1000, 1));
      }
      if (m.name == "sub/b.ovf") found_sub = m.size == 513;
    }
    EXPECT_EQ(found_long, std::string(fmt) != "ustar") << fmt;
    EXPECT_TRUE(found_sub) << fmt;
  }
}

}  // namespace
}  // namespace arche::test
