#include "jobs/history.h"

#include <fcntl.h>

#include <boost/filesystem.hpp>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/file.h"

namespace arche::jobs {

namespace {

std::string header_line() { return fmt::format("{} {}\n", kHistoryMagic, kHistoryVersion); }

std::string crc_hex(const std::string& text) { return fmt::format("{:08x}", crc32c(text.data(), text.size())); }

}  // namespace

History read_history(const std::string& path) {
  History h;
  if (!boost::filesystem::exists(path)) return h;
  File f = File::open(path, OpenMode::read_only);
  std::string text(f.size(), '\0');
  f.read_exact(0, {reinterpret_cast<uint8_t*>(text.data()), text.size()});
  const std::string header = header_line();
  if (text.rfind(header, 0) != 0) {
    if (text.rfind(std::string(kHistoryMagic) + " ", 0) == 0)
      fail(ErrorCategory::unsupported, "{}: a job history of a newer version (this arche reads version {})", path,
           kHistoryVersion);
    fail(ErrorCategory::format, "{}: not an arche job history (its first line is not '{} {}')", path, kHistoryMagic,
         kHistoryVersion);
  }
  size_t pos = header.size(), line_no = 1;
  while (pos < text.size()) {
    ++line_no;
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) {  // the tail of an interrupted append
      ++h.damaged_lines;
      break;
    }
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() < 10 || line[8] != ' ' || crc_hex(line.substr(9)) != line.substr(0, 8)) {
      ++h.damaged_lines;
      continue;
    }
    try {
      h.runs.push_back(record_from_json(Json::parse(line.substr(9)), fmt::format("{} line {}", path, line_no)));
    } catch (const Json::exception&) {
      ++h.damaged_lines;  // cannot happen with a right CRC unless written by something else
    }
  }
  return h;
}

void append_history(const std::string& path, const RunRecord& record) {
  File f = File::open(path, OpenMode::read_write, O_CREAT);
  uint64_t size = f.size();
  std::string out;
  if (size == 0) {
    out = header_line();
  } else {
    uint8_t last = 0;
    f.read_exact(size - 1, {&last, 1});
    if (last != '\n') out = "\n";  // end the half line a crash left
  }
  const std::string json = record_to_json(record).dump();
  out += crc_hex(json) + " " + json + "\n";
  f.write_all(size, {reinterpret_cast<const uint8_t*>(out.data()), out.size()});
  f.sync();
  if (size == 0) sync_directory(boost::filesystem::path(path).parent_path().string());
}

}  // namespace arche::jobs
