#include "tape/library.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/file.h"

namespace arche::tape {

namespace {

constexpr char kVtapePrefix[] = "vtape:";
constexpr char kSuffix[] = ".vtape";

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

class VtapeLibrary final : public Library {
 public:
  VtapeLibrary(std::string device, std::string dir) : device_(std::move(device)), dir_(std::move(dir)) {}
  const std::string& device() const override { return device_; }
  std::shared_ptr<TapeSyscalls> syscalls() override { return tape_; }
  std::string drive_path() override {
    const std::string name = loaded();
    if (name.empty()) fail(ErrorCategory::not_found, "{}: no tape loaded", device_);
    return dir_ + "/" + name + kSuffix;
  }
  void load(const std::string& label, const std::string& why) override {
    std::vector<std::string> all = cartridges();
    if (label.empty()) {
      if (all.empty()) fail(ErrorCategory::not_found, "{}: no cartridge for {}", device_, why);
      return;  // the caller walks cartridges() itself
    }
    if (std::find(all.begin(), all.end(), label) == all.end())
      fail(ErrorCategory::not_found, "{}: no cartridge {} (needed for {})", device_, label, why);
    const std::string text = label + "\n";
    write_file_atomic(dir_ + "/drive",
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  std::vector<std::string> cartridges() const override {
    if (!std::filesystem::is_directory(dir_))
      fail(ErrorCategory::not_found, "{}: no such virtual tape library", device_);
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string f = e.path().filename().string();
      if (f.size() > 6 && f.ends_with(kSuffix)) out.push_back(f.substr(0, f.size() - 6));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string loaded() const override {
    FILE* f = std::fopen((dir_ + "/drive").c_str(), "re");
    if (!f) return "";
    char line[128] = {};
    const bool ok = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    std::string name = ok ? line : "";
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    return valid_name(name) ? name : "";
  }

 private:
  std::string device_, dir_;
  std::shared_ptr<VirtualTape> tape_ = std::make_shared<VirtualTape>();
};

class DriveLibrary final : public Library {
 public:
  DriveLibrary(std::string device, std::string command, std::shared_ptr<TapeSyscalls> sys)
      : device_(std::move(device)), command_(std::move(command)), sys_(std::move(sys)) {}
  const std::string& device() const override { return device_; }
  std::shared_ptr<TapeSyscalls> syscalls() override { return sys_; }
  std::string drive_path() override { return device_; }
  void load(const std::string& label, const std::string& why) override {
    const std::string wanted = label.empty() ? "a tape" : "tape " + label;
    if (!command_.empty()) {
      ::setenv("ARCHE_TAPE_DEVICE", device_.c_str(), 1);
      ::setenv("ARCHE_TAPE_LABEL", label.c_str(), 1);
      ::setenv("ARCHE_TAPE_REASON", why.c_str(), 1);
      const int status = std::system(command_.c_str());
      if (status != 0)
        fail(ErrorCategory::not_found, "the changer command could not load {} into {} (for {}): it exited with {}",
             wanted, device_, why, WIFEXITED(status) ? WEXITSTATUS(status) : status);
      return;
    }
    if (!::isatty(STDIN_FILENO) || !::isatty(STDERR_FILENO))
      fail(ErrorCategory::not_found, "{} is needed in {} (for {}): load it, or give --changer-command", wanted, device_,
           why);
    std::cerr << "Insert " << wanted << " into " << device_ << " (for " << why << ") and press Enter: " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) fail(ErrorCategory::interrupted, "no tape was loaded");
  }
  std::vector<std::string> cartridges() const override { return {}; }
  std::string loaded() const override { return ""; }

 private:
  std::string device_, command_;
  std::shared_ptr<TapeSyscalls> sys_;
};

}  // namespace

bool is_vtape(const std::string& device) { return device.rfind(kVtapePrefix, 0) == 0; }

std::unique_ptr<Library> open_library(const std::string& device, const std::string& changer_command,
                                      std::shared_ptr<TapeSyscalls> syscalls) {
  if (is_vtape(device)) {
    const std::string dir = device.substr(sizeof kVtapePrefix - 1);
    if (dir.empty()) fail(ErrorCategory::usage, "vtape:DIR needs a directory");
    return std::make_unique<VtapeLibrary>(device, dir);
  }
  if (device.rfind("/dev/", 0) != 0)
    fail(ErrorCategory::usage, "'{}' is not a tape device: give /dev/nstN or vtape:DIR", device);
  if (device.rfind("/dev/st", 0) == 0)
    fail(ErrorCategory::usage, "{} rewinds on close: use the no-rewind node /dev/n{}", device, device.substr(5));
  return std::make_unique<DriveLibrary>(device, changer_command, syscalls ? syscalls : linux_tape_syscalls());
}

void create_vtape_cartridge(const std::string& device, const std::string& name, const CartridgeInfo& info) {
  if (!is_vtape(device)) fail(ErrorCategory::usage, "only a vtape:DIR library makes cartridges");
  if (!valid_name(name))
    fail(ErrorCategory::usage, "'{}' cannot name a cartridge (letters, digits, - _ . ; at most 64)", name);
  const std::string dir = device.substr(sizeof kVtapePrefix - 1);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(ErrorCategory::io, "{}: {}", dir, ec.message());
  const std::string path = dir + "/" + name + kSuffix;
  if (!std::filesystem::exists(path)) create_cartridge(path, info);
  open_library(device)->load(name, "labelling");
}

}  // namespace arche::tape
