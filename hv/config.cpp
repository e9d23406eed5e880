#include "hv/config.h"

#include <toml++/toml.h>

#include <boost/filesystem.hpp>
#include <set>

#include "core/error.h"
#include "core/units.h"
#include "image/mirror/assemble.h"

namespace arche::hv {

namespace {

namespace fs = boost::filesystem;

std::string relative_to(const fs::path& base_dir, const std::string& path) {
  if (path.empty()) return path;
  fs::path p(path);
  return p.is_absolute() ? path : (base_dir / p).lexically_normal().string();
}

void reject_unknown(const toml::table& t, const std::set<std::string>& known, const std::string& where,
                    const std::string& file) {
  for (const auto& [key, value] : t) {
    if (!known.count(std::string(key.str())))
      fail(ErrorCategory::usage, "{}: unknown key '{}'{} (line {})", file, key.str(), where,
           value.source().begin.line);
  }
}

template <typename T, typename View>
T get_or(const View& node, const std::string& key, const std::string& file, T fallback) {
  if (!node) return fallback;
  if (auto v = node.template value<T>()) return *v;
  fail(ErrorCategory::usage, "{}: '{}' has the wrong type", file, key);
}

}  // namespace

void VmConfig::validate() const {
  if (name.empty() || name.size() > 64 || name.find_first_of("/ \t\n") != std::string::npos || name[0] == '.')
    fail(ErrorCategory::usage, "vm: bad name '{}' (1-64 characters, no '/' or spaces)", name);
  if (cpus < 1 || cpus > 64) fail(ErrorCategory::usage, "vm: cpus must be between 1 and 64 (got {})", cpus);
  if (kernel.empty()) fail(ErrorCategory::usage, "vm: no kernel given");
  if (serial != "stdio" && serial != "none" && serial.rfind("file:", 0) != 0 && serial.rfind("unix:", 0) != 0)
    fail(ErrorCategory::usage, "vm: serial must be stdio, none, file:PATH or unix:PATH (got '{}')", serial);
  for (const auto& n : nets)
    if (n.model != "virtio") fail(ErrorCategory::usage, "vm: network model '{}' is not supported (virtio)", n.model);
}

VmConfig load_vm_config(const std::string& toml_path) {
  toml::table root;
  try {
    root = toml::parse_file(toml_path);
  } catch (const toml::parse_error& e) {
    fail(ErrorCategory::usage, "{}: {} (line {}, column {})", toml_path, e.description(), e.source().begin.line,
         e.source().begin.column);
  }
  fs::path dir = fs::absolute(fs::path(toml_path)).parent_path();
  reject_unknown(root, {"name", "memory", "cpus", "kernel", "initrd", "cmdline", "serial", "control", "cpu", "disk", "net"},
                 "", toml_path);
  VmConfig c;
  c.name = get_or<std::string>(root["name"], "name", toml_path, fs::path(toml_path).stem().string());
  if (auto m = root["memory"]) {
    if (auto s = m.value<std::string>()) c.memory = parse_size(*s, "memory");
    else if (auto n = m.value<int64_t>(); n && *n > 0) c.memory = uint64_t(*n) << 20;  // a bare number is MiB
    else fail(ErrorCategory::usage, "{}: 'memory' must be a size like \"2048M\"", toml_path);
  }
  int64_t cpus = get_or<int64_t>(root["cpus"], "cpus", toml_path, 1);
  if (cpus < 1 || cpus > 64) fail(ErrorCategory::usage, "{}: cpus must be between 1 and 64", toml_path);
  c.cpus = static_cast<unsigned>(cpus);
  c.kernel = relative_to(dir, get_or<std::string>(root["kernel"], "kernel", toml_path, ""));
  c.initrd = relative_to(dir, get_or<std::string>(root["initrd"], "initrd", toml_path, ""));
  c.cmdline = get_or<std::string>(root["cmdline"], "cmdline", toml_path, "");
  c.serial = get_or<std::string>(root["serial"], "serial", toml_path, "stdio");
  if (c.serial.rfind("file:", 0) == 0) c.serial = "file:" + relative_to(dir, c.serial.substr(5));
  if (c.serial.rfind("unix:", 0) == 0) c.serial = "unix:" + relative_to(dir, c.serial.substr(5));
  c.control = relative_to(dir, get_or<std::string>(root["control"], "control", toml_path, ""));
  c.cpu = parse_cpu_model(get_or<std::string>(root["cpu"], "cpu", toml_path, "baseline"));

  auto tables = [&](const char* key) {
    std::vector<const toml::table*> out;
    auto node = root[key];
    if (!node) return out;
    const toml::array* arr = node.as_array();
    if (!arr) fail(ErrorCategory::usage, "{}: '{}' must be written as [[{}]] tables", toml_path, key, key);
    for (const auto& e : *arr) {
      const toml::table* t = e.as_table();
      if (!t) fail(ErrorCategory::usage, "{}: '{}' must be written as [[{}]] tables", toml_path, key, key);
      out.push_back(t);
    }
    return out;
  };
  for (const toml::table* t : tables("disk")) {
    reject_unknown(*t, {"path", "format", "readonly"}, " in [[disk]]", toml_path);
    DiskConfig d;
    auto view = toml::node_view<const toml::node>(t);
    d.path = get_or<std::string>(view["path"], "disk.path", toml_path, "");
    if (d.path.empty()) fail(ErrorCategory::usage, "{}: a [[disk]] has no path", toml_path);
    // A mirror name is not a path: each of its legs is relative to the .toml.
    d.path = image::mirror::is_mirror_name(d.path) ? image::mirror::resolve_mirror_name(dir.string(), d.path)
                                                    : relative_to(dir, d.path);
    d.format = get_or<std::string>(view["format"], "disk.format", toml_path, "");
    d.readonly = get_or<bool>(view["readonly"], "disk.readonly", toml_path, false);
    c.disks.push_back(d);
  }
  for (const toml::table* t : tables("net")) {
    reject_unknown(*t, {"tap", "mac", "model", "network"}, " in [[net]]", toml_path);
    NetConfig n;
    auto view = toml::node_view<const toml::node>(t);
    n.tap = get_or<std::string>(view["tap"], "net.tap", toml_path, "");
    if (n.tap.empty()) fail(ErrorCategory::usage, "{}: a [[net]] has no tap", toml_path);
    n.mac = get_or<std::string>(view["mac"], "net.mac", toml_path, "");
    n.model = get_or<std::string>(view["model"], "net.model", toml_path, "virtio");
    n.network = get_or<std::string>(view["network"], "net.network", toml_path, "");
    c.nets.push_back(n);
  }
  return c;
}

DiskConfig parse_disk_spec(const std::string& spec) {
  DiskConfig d;
  size_t comma = spec.find(',');
  d.path = spec.substr(0, comma);
  if (d.path.empty()) fail(ErrorCategory::usage, "vm: --disk '{}' has no file", spec);
  while (comma != std::string::npos) {
    size_t next = spec.find(',', comma + 1);
    std::string opt = spec.substr(comma + 1, next == std::string::npos ? std::string::npos : next - comma - 1);
    if (opt == "readonly" || opt == "readonly=on" || opt == "ro") d.readonly = true;
    else if (opt.rfind("format=", 0) == 0) d.format = opt.substr(7);
    else fail(ErrorCategory::usage, "vm: --disk option '{}' unknown (format=F, readonly)", opt);
    comma = next;
  }
  return d;
}

NetConfig parse_net_spec(const std::string& spec) {
  NetConfig n;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    std::string opt = spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (opt.rfind("tap=", 0) == 0) n.tap = opt.substr(4);
    else if (opt.rfind("mac=", 0) == 0) n.mac = opt.substr(4);
    else if (opt.rfind("model=", 0) == 0) n.model = opt.substr(6);
    else fail(ErrorCategory::usage, "vm: --net option '{}' unknown (tap=NAME, mac=MAC)", opt);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (n.tap.empty()) fail(ErrorCategory::usage, "vm: --net '{}' needs tap=NAME", spec);
  return n;
}

}  // namespace arche::hv
