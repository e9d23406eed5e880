// The command line's conventions (issue 9, points 11-13): unknown commands, parse
// errors that name arguments as the help shows them (checked over every command of
// every group, so groups added later are held to it too), `image read` beyond the
// end, LUKS images described by `image info`, `-o help`, convert's default format,
// and the JSON conventions of the image commands.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "core/json.h"
#include "tests/image/image_test_util.h"

namespace arche::test {
namespace {

void expect_usage_error(const std::vector<std::string>& args, const std::string& expected) {
  CommandResult r = arche(args);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_EQ(r.err, "arche: " + expected + "\n");
  EXPECT_TRUE(r.out.empty()) << r.out;
}

std::vector<std::string> section_words(const std::string& help, const std::string& heading) {
  std::vector<std::string> words;
  std::istringstream in(help);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind(heading, 0) == 0) {
      inside = true;
      continue;
    }
    if (inside && (line.empty() || line[0] != ' ')) break;
    if (inside) {
      std::istringstream w(line);
      std::string word;
      w >> word;
      words.push_back(word);
    }
  }
  return words;
}

TEST(CliConventions, UnknownCommands) {
  expect_usage_error({"frob"}, "unknown command 'frob' (commands: image, backup, vm, raid, tape, p2v, job, schedule) (see: arche --help)");
  // --help after an unknown command is no way around it.
  expect_usage_error({"frob", "--help"}, "unknown command 'frob' (commands: image, backup, vm, raid, tape, p2v, job, schedule) (see: arche --help)");
  CommandResult r = arche({"image", "frob", "--help"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err.rfind("arche: image: unknown command 'frob' (commands: create, info,", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("(see: arche image --help)\n"), std::string::npos) << r.err;
  // Options before the command are skipped, with their values.
  EXPECT_EQ(arche({"-q", "--json", "image", "frob"}).exit_code, 64);
  EXPECT_EQ(arche({"-q", "image", "info", "--help"}).exit_code, 0);
}

TEST(CliConventions, ParseErrorsNameArgumentsAsTheHelpDoes) {
  CommandResult help = arche({"image", "info", "--help"});
  EXPECT_NE(help.out.find("Usage: arche image info [OPTIONS] FILE"), std::string::npos) << help.out;
  expect_usage_error({"image", "info"}, "image info: FILE is missing (see: arche image info --help)");
  expect_usage_error({"image", "info", "a", "b"}, "image info: unexpected argument 'b' (see: arche image info --help)");
  expect_usage_error({"image", "write", "x", "0", "--zeroes", "--discard"},
                     "image write: --zeroes and --discard cannot be used together (see: arche image write --help)");
  expect_usage_error({"image", "measure", "--size", "1M"},
                     "image measure: -O,--output-format is required (see: arche image measure --help)");
  expect_usage_error({"image", "convert", "-m", "x", "a", "b"},
                     "image convert: -m,--threads: 'x' is not a whole number (see: arche image convert --help)");
  expect_usage_error({"image", "create", "-f"},
                     "image create: -f,--format needs a value (see: arche image create --help)");
  expect_usage_error({"image"},
                     "image: a command is required: create, info, check, map, compare, convert, commit, "
                     "rebase, resize, measure, write, read, import, ls, extract (see: arche image --help)");
  CommandResult r = arche({"image", "check", "-r", "foo", "x"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err.rfind("arche: image check: -r,--repair: ", 0), 0u) << r.err;
}

// Every command of every group: called without its required arguments, it names
// the first of them the way its help does, and no CLI11 stock text leaks out.
TEST(CliConventions, EveryCommandNamesItsMissingArgument) {
  std::vector<std::string> groups = section_words(arche({"--help"}).out, "Commands:");
  ASSERT_GE(groups.size(), 3u);
  int checked = 0;
  for (const std::string& group : groups) {
    for (const std::string& command : section_words(arche({group, "--help"}).out, "Commands:")) {
      CommandResult help = arche({group, command, "--help"});
      std::smatch usage;
      ASSERT_TRUE(std::regex_search(help.out, usage, std::regex("Usage: ([^\n]*)"))) << group << " " << command;
      // The first required argument: a capitalised word outside brackets ("LEGS..." names
      // LEGS: the dots of a repeated argument are not part of its name).
      std::smatch first;
      std::string line = std::regex_replace(usage[1].str(), std::regex(R"(\[[^\]]*\])"), "");
      if (!std::regex_search(line, first, std::regex(R"( ([A-Z][A-Z0-9_:]*(?:\.[A-Z0-9_:]+)*)(\.\.\.)?(\s|$))"))) continue;
      if (first[1] == "COMMAND") continue;  // a group of its own: checked by UnknownCommands' rule
      CommandResult r = arche({group, command});
      SCOPED_TRACE(group + " " + command + ": " + r.err);
      EXPECT_EQ(r.exit_code, 64);
      // The first required argument is missing, or a required option CLI11 checks first.
      std::smatch said;
      ASSERT_TRUE(std::regex_match(
          r.err, said,
          std::regex("arche: " + group + " " + command + ": (\\S+) is (missing|required) \\(see: arche " + group + " " +
                     command + " --help\\)\n")));
      if (said[2] == "missing") EXPECT_EQ(said[1], first[1].str());
      else EXPECT_NE(help.out.find(said[1].str()), std::string::npos) << "an option the help does not show";
      for (const char* stock : {"A subcommand", "Could not convert", " excludes ", "not expected", "The following"})
        EXPECT_EQ(r.err.find(stock), std::string::npos) << stock;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(CliConventions, ReadBeyondTheEndNamesTheRange) {
  TempDir dir;
  std::string img = dir.file("d.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", img, "1M"}).exit_code, 0);
  CommandResult r = arche({"image", "read", img, "512K", "1M"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_EQ(r.err, "arche: image read: bytes 524288 to 1572864 (1 MiB at offset 524288) lie beyond the end of " + img +
                       " (1048576 bytes)\n");
  EXPECT_TRUE(r.out.empty()) << "nothing is written before the range is known to fit";
  EXPECT_EQ(arche({"image", "read", img, "512K", "512K"}).out.size(), 512u << 10);
}

TEST(CliConventions, LuksImagesAreDescribedNotRead) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("luks.qcow2");
  CommandResult made;
  for (int attempt = 0; attempt < 5; ++attempt) {  // qemu < 9.2.1 PBKDF2 timing bug (see qcow2_bad_input_test)
    made = qemu_img({"create", "-q", "--object", "secret,id=s0,data=not-a-real-secret", "-f", "qcow2", "-o",
                     "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", img, "8M"});
    if (made.exit_code == 0 || made.err.find("accurate CPU usage") == std::string::npos) break;
  }
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CommandResult info = arche({"image", "info", img});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("encrypted: yes"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("    encrypt:\n        format: luks\n"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("cipher alg: aes-256"), std::string::npos) << info.out;
  Json j = Json::parse(arche({"image", "info", "--json", img}).out);
  EXPECT_EQ(j["encrypted"], true);
  const Json& e = j["format-specific"]["data"]["encrypt"];
  EXPECT_EQ(e["format"], "luks");
  EXPECT_EQ(e["cipher-mode"], "xts");
  EXPECT_EQ(e["ivgen-alg"], "plain64");
  EXPECT_EQ(e["hash-alg"], "sha256");
  // What qemu-img says about the same header.
  Json q = Json::parse(qemu_img({"info", "--output=json", img}).out);
  const Json& qe = q["format-specific"]["data"]["encrypt"];
  EXPECT_EQ(e["uuid"], qe["uuid"]);
  EXPECT_EQ(e["payload-offset"], qe["payload-offset"]);
  EXPECT_EQ(e["cipher-alg"], qe["cipher-alg"]);
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"image", "map", img},
                                             {"image", "convert", img, dir.file("out.raw")},
                                             {"image", "check", img},
                                             {"image", "read", img, "0", "512"}}) {
    CommandResult r = arche(args);
    EXPECT_EQ(r.exit_code, 69) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("encrypted qcow2 images (LUKS) cannot be read or written"), std::string::npos) << r.err;
  }
}

TEST(CliConventions, CreationOptionsHelp) {
  for (const std::string format : {"qcow2", "raw", "vmdk", "vpc", "vhdx", "vdi"}) {
    SCOPED_TRACE(format);
    CommandResult help = arche({"image", "create", "-f", format, "-o", "help"});
    ASSERT_EQ(help.exit_code, 0) << help.err;
    EXPECT_NE(help.out.find("Creation options of " + format), std::string::npos) << help.out;
    // The names -o help lists are exactly those create knows.
    Json listed = Json::parse(arche({"image", "create", "-f", format, "-o", "help", "--json"}).out)["options"];
    std::string names;
    for (const Json& o : listed) names += (names.empty() ? "" : ", ") + o["name"].get<std::string>();
    TempDir dir;
    CommandResult bad = arche({"image", "create", "-f", format, "-o", "bogus=1", dir.file("x"), "1M"});
    EXPECT_EQ(bad.exit_code, 64);
    EXPECT_NE(bad.err.find("(known: " + names + ")"), std::string::npos) << bad.err << " vs " << names;
  }
  CommandResult convert = arche({"image", "convert", "-O", "vmdk", "-o", "help"});
  EXPECT_EQ(convert.exit_code, 0) << convert.err;
  EXPECT_NE(convert.out.find("subformat="), std::string::npos);
  EXPECT_EQ(arche({"image", "measure", "-O", "qcow2", "-o", "help"}).exit_code, 0);
}

TEST(CliConventions, ConvertWithoutOutputFormatMeansRaw) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string src = dir.file("s.qcow2"), dst = dir.file("d.img");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", src, "4M"}).exit_code, 0);
  ASSERT_EQ(arche({"image", "write", src, "1M", "--pattern", "0x33", "--length", "64K"}).exit_code, 0);
  CommandResult r = arche({"image", "convert", src, dst});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json q = Json::parse(qemu_img({"info", "--output=json", dst}).out);
  EXPECT_EQ(q["format"], "raw");
  EXPECT_EQ(read_file(dst).size(), 4u << 20);
  EXPECT_EQ(read_all_arche(dst), read_all_arche(src));
}

TEST(CliConventions, JsonBeforeOrAfterTheCommand) {
  TempDir dir;
  std::string img = dir.file("j.raw");
  ASSERT_EQ(arche({"image", "create", "-f", "raw", img, "1M"}).exit_code, 0);
  CommandResult before = arche({"--json", "image", "info", img});
  CommandResult after = arche({"image", "info", "--json", img});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(before.out, after.out);
  Json j = Json::parse(before.out);
  // Absent values are null, never missing or "".
  EXPECT_TRUE(j.contains("cluster-size") && j["cluster-size"].is_null());
  EXPECT_TRUE(j.contains("backing-filename") && j["backing-filename"].is_null());
  EXPECT_TRUE(j["snapshots"].is_array() && j["snapshots"].empty());
  Json same = Json::parse(arche({"--json", "image", "compare", img, img}).out);
  EXPECT_EQ(same["identical"], true);
  EXPECT_TRUE(same["first-difference"].is_null() && same["reason"].is_null());
  // Errors are JSON too, wherever --json stood.
  CommandResult missing = arche({"--json", "image", "info", dir.file("none")});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_EQ(Json::parse(missing.out)["error"]["category"], "not_found");
  EXPECT_EQ(Json::parse(arche({"--json", "frob"}).out)["error"]["category"], "usage");
}

TEST(CliConventions, SnapshotTimesAreRfc3339) {
  ARCHE_REQUIRE_PROGRAM("qemu-img");
  TempDir dir;
  std::string img = dir.file("s.qcow2");
  ASSERT_EQ(arche({"image", "create", "-f", "qcow2", img, "1M"}).exit_code, 0);
  ASSERT_EQ(qemu_img({"snapshot", "-c", "before-update", img}).exit_code, 0);
  Json j = Json::parse(arche({"image", "info", "--json", img}).out);
  ASSERT_EQ(j["snapshots"].size(), 1u);
  std::string date = j["snapshots"][0]["date"];
  EXPECT_TRUE(std::regex_match(date, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d)"))) << date;
  EXPECT_EQ(date, rfc3339(j["snapshots"][0]["date-sec"].get<int64_t>()));
  CommandResult text = arche({"image", "info", img});
  EXPECT_NE(text.out.find(date), std::string::npos) << text.out;
}

}  // namespace
}  // namespace arche::test
