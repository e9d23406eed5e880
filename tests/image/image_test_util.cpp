#include "tests/image/image_test_util.h"

#include "image/format.h"

namespace arche::test {

CommandResult qemu_img(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

CommandResult qemu_io(const std::string& image, const std::string& format, const std::vector<std::string>& commands) {
  std::vector<std::string> argv{"qemu-io", "-f", format};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  return run(argv);
}

std::vector<uint8_t> read_all(image::BlockDevice& dev) {
  std::vector<uint8_t> out(dev.size());
  const size_t chunk = 8 << 20;
  for (size_t pos = 0; pos < out.size(); pos += chunk)
    dev.read(pos, std::span(out.data() + pos, std::min(chunk, out.size() - pos)));
  return out;
}

std::vector<uint8_t> read_all_arche(const std::string& path, const std::string& format) {
  image::OpenOptions o;
  o.format = format;
  auto dev = image::open_image(path, o);
  return read_all(*dev);
}

std::vector<uint8_t> read_all_qemu(const std::string& path, const std::string& dir) {
  std::string out = dir + "/qemu-reference.raw";
  CommandResult r = qemu_img({"convert", "-O", "raw", path, out});
  if (r.exit_code != 0) throw std::runtime_error("qemu-img convert failed: " + r.err);
  std::vector<uint8_t> data = read_file(out);
  std::remove(out.c_str());
  return data;
}

::testing::AssertionResult qemu_check_clean(const std::string& path) {
  CommandResult r = qemu_img({"check", path});
  if (r.exit_code == 0 && r.out.find("No errors were found") != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "qemu-img check " << path << " exit " << r.exit_code << ":\n"
                                       << r.out << r.err;
}

}  // namespace arche::test
