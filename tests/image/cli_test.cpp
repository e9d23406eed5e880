// The command line: help everywhere, version, exit codes, JSON that parses.
#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

TEST(Cli, HelpAndVersion) {
  CommandResult v = arche({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("arche ", 0), 0u) << v.out;
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--help"}, {"image", "--help"}, {"image", "create", "--help"},
        {"image", "convert", "--help"}, {"image", "check", "--help"}, {"image", "rebase", "--help"}}) {
    CommandResult h = arche(args);
    EXPECT_EQ(h.exit_code, 0) << args.back();
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << h.out;
  }
  CommandResult none = arche({});
  EXPECT_EQ(none.exit_code, 64) << "no command is a usage error";
}

TEST(Cli, CompareExitCodesAndJson) {
  TempDir dir;
  write_file(dir.file("a.raw"), random_bytes(1 << 20, 1));
  write_file(dir.file("b.raw"), read_file(dir.file("a.raw")));
  std::vector<uint8_t> c = read_file(dir.file("a.raw"));
  c[777777] ^= 1;
  write_file(dir.file("c.raw"), c);
  EXPECT_EQ(arche({"image", "compare", dir.file("a.raw"), dir.file("b.raw")}).exit_code, 0);
  CommandResult diff = arche({"image", "compare", dir.file("a.raw"), dir.file("c.raw")});
  EXPECT_EQ(diff.exit_code, 1);
  EXPECT_NE(diff.out.find("offset 777777"), std::string::npos) << diff.out;
  CommandResult j = arche({"image", "compare", "--json", dir.file("a.raw"), dir.file("c.raw")});
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["identical"], false);
  EXPECT_EQ(parsed["first-difference"], 777777);
  // A longer image equals a shorter one when the rest reads as zeros, unless --strict.
  std::vector<uint8_t> longer = read_file(dir.file("a.raw"));
  longer.resize(2 << 20, 0);
  write_file(dir.file("long.raw"), longer);
  EXPECT_EQ(arche({"image", "compare", dir.file("a.raw"), dir.file("long.raw")}).exit_code, 0);
  EXPECT_EQ(arche({"image", "compare", "-s", dir.file("a.raw"), dir.file("long.raw")}).exit_code, 1);
}

TEST(Cli, JsonOnListingsAndErrors) {
  TempDir dir;
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", dir.file("x.qcow2"), "1G"}).exit_code, 0);
  auto info = nlohmann::json::parse(arche({"image", "info", "--json", dir.file("x.qcow2")}).out);
  EXPECT_EQ(info["format"], "qcow2");
  EXPECT_EQ(info["virtual-size"], 1ull << 30);
  EXPECT_EQ(info["cluster-size"], 65536);
  auto map = nlohmann::json::parse(arche({"image", "map", "--json", dir.file("x.qcow2")}).out);
  ASSERT_EQ(map.size(), 1u);
  EXPECT_EQ(map[0]["kind"], "unallocated");
  auto check = nlohmann::json::parse(arche({"image", "check", "--json", dir.file("x.qcow2")}).out);
  EXPECT_EQ(check["corruptions"], 0);
  EXPECT_EQ(check["leaks"], 0);
  CommandResult err = arche({"image", "info", "--json", dir.file("missing.qcow2")});
  EXPECT_EQ(err.exit_code, 66);
  auto e = nlohmann::json::parse(err.out);
  EXPECT_EQ(e["error"]["category"], "not_found");
}

TEST(Cli, CreateWithoutFormatOfBackingRecordsTheProbedFormat) {
  TempDir dir;
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", dir.file("base.qcow2"), "1M"}).exit_code, 0);
  CommandResult r = arche({"image", "create", "-f", "qcow2", "-b", "base.qcow2", dir.file("top.qcow2")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = nlohmann::json::parse(arche({"image", "info", "--json", dir.file("top.qcow2")}).out);
  EXPECT_EQ(info["backing-filename-format"], "qcow2");
  EXPECT_EQ(info["virtual-size"], 1 << 20) << "size defaults to the backing file's";
}

TEST(Cli, WriteAndReadBytes) {
  TempDir dir;
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", dir.file("x.qcow2"), "4M"}).exit_code, 0);
  write_file(dir.file("payload"), {'h', 'e', 'l', 'l', 'o'});
  ASSERT_EQ(arche({"image", "write", dir.file("x.qcow2"), "1M", "--from", dir.file("payload")}).exit_code, 0);
  CommandResult r = arche({"image", "read", dir.file("x.qcow2"), "1M", "5"});
  EXPECT_EQ(r.out, "hello");
  ASSERT_EQ(arche({"image", "write", dir.file("x.qcow2"), "0", "--pattern", "0xab", "--length", "3"}).exit_code, 0);
  EXPECT_EQ(arche({"image", "read", dir.file("x.qcow2"), "0", "4"}).out, std::string("\xab\xab\xab\0", 4));
}

}  // namespace
}  // namespace arche::test
