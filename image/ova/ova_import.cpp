#include "image/ova/ova_import.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem.hpp>
#include <cctype>
#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/units.h"
#include "image/format.h"
#include "image/ops/convert.h"
#include "image/ova/manifest.h"
#include "image/ova/ovf.h"
#include "image/ova/tar_index.h"

namespace arche::image::ova {

namespace fs = boost::filesystem;

namespace {

constexpr uint64_t kMaxOvfBytes = 16 * MiB;

// Removes what an import made unless it completed: temporary files always, disks
// already under their final names when a later step failed, and DIR itself when
// the import created it and it is empty again.
class Staging {
 public:
  Staging(std::string dir, bool created_dir) : dir_(std::move(dir)), created_dir_(created_dir) {}
  ~Staging() {
    for (const std::string& p : temps_) ::unlink(p.c_str());
    if (!done_) {
      for (const std::string& p : finals_) ::unlink(p.c_str());
      boost::system::error_code ec;
      if (created_dir_ && fs::is_empty(dir_, ec) && !ec) fs::remove(dir_, ec);
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  std::string temp(const std::string& final_name, const char* tag) {
    std::string p = (fs::path(dir_) / fmt::format(".{}.arche-import-{}-{}", final_name, tag, ::getpid())).string();
    ::unlink(p.c_str());
    temps_.push_back(p);
    return p;
  }
  void forget_temp(const std::string& p) { std::erase(temps_, p); }
  void placed(const std::string& final_path) { finals_.push_back(final_path); }
  void done() { done_ = true; }

 private:
  std::string dir_;
  bool created_dir_;
  std::vector<std::string> temps_, finals_;
  bool done_ = false;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A name that is safe as a file name in DIR.
std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (std::isalnum(u) || c == '-' || c == '_' || c == '.') ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  if (out.size() > 100) out.resize(100);
  return out.empty() ? "vm" : out;
}

std::string normalize_member(std::string name) {
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  return name;
}

bool looks_like_xml(const File& f) {
  uint8_t head[64] = {};
  size_t n = f.read_some(0, head);
  size_t i = 0;
  if (n >= 3 && head[0] == 0xef && head[1] == 0xbb && head[2] == 0xbf) i = 3;  // UTF-8 BOM
  while (i < n && std::isspace(head[i])) ++i;
  return i < n && head[i] == '<';
}

std::string read_text(const File& f, uint64_t offset, uint64_t size, const std::string& what) {
  if (size > kMaxOvfBytes) fail(ErrorCategory::format, "{}: the OVF descriptor is larger than 16 MiB", what);
  std::string text(size, '\0');
  f.read_exact(offset, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()));
  return text;
}

// Copies `size` bytes at `offset` of the archive into a new file.
void extract(const File& archive, uint64_t offset, uint64_t size, const std::string& to) {
  File out = File::open(to, OpenMode::create_new);
  loff_t in_off = static_cast<loff_t>(offset), out_off = 0;
  uint64_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(archive.fd(), &in_off, out.fd(), &out_off, std::min<uint64_t>(left, 1 << 30), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
      std::vector<uint8_t> buf(4 * MiB);  // file systems without copy_file_range
      while (left > 0) {
        uint64_t m = std::min<uint64_t>(left, buf.size());
        archive.read_exact(static_cast<uint64_t>(in_off), std::span(buf.data(), m));
        out.write_all(static_cast<uint64_t>(out_off), std::span(buf.data(), m));
        in_off += static_cast<loff_t>(m);
        out_off += static_cast<loff_t>(m);
        left -= m;
      }
      break;
    }
    if (n < 0) throw_errno(errno, "copy from " + archive.path() + " to " + to);
    if (n == 0) fail(ErrorCategory::format, "{}: archive ended inside a disk (truncated?)", archive.path());
    left -= static_cast<uint64_t>(n);
  }
}

std::string extension_for(const std::string& format) {
  if (format == "vpc") return "vhd";
  return format;
}

struct PlannedDisk {
  std::string final_name;  // in DIR
  const OvfFile* file = nullptr;  // null: a blank disk
  uint64_t capacity = 0;
  std::string label;  // for messages
};

struct PlannedMachine {
  const OvfSystem* system;
  std::string name;
  std::string config_name;
  std::vector<PlannedDisk> disks;
};

}  // namespace

std::string size_string(uint64_t bytes) {
  if (bytes && bytes % MiB == 0) return fmt::format("{}M", bytes / MiB);
  if (bytes && bytes % KiB == 0) return fmt::format("{}K", bytes / KiB);
  return std::to_string(bytes);
}

ImportResult import_package(const std::string& package, const std::string& dir, const ImportOptions& options) {
  const FormatDriver& driver = driver_for(options.format);
  File pkg = File::open(package, OpenMode::read_only);

  // The descriptor: a plain .ovf, or the .ovf member of the archive (the first
  // member, by the OVF specification; any .ovf member is accepted).
  std::string ovf_text, ovf_name = package;
  std::string ovf_member = fs::path(package).filename().string();  // as the manifest names it
  std::vector<TarMember> members;
  const bool plain_ovf = looks_like_xml(pkg);
  if (plain_ovf) {
    ovf_text = read_text(pkg, 0, pkg.size(), package);
  } else {
    members = read_tar_index(pkg, package);
    auto it = std::find_if(members.begin(), members.end(),
                           [](const TarMember& m) { return m.regular && ends_with(lower(m.name), ".ovf"); });
    if (it == members.end()) fail(ErrorCategory::format, "{}: no .ovf descriptor in the archive (not an OVA?)", package);
    ovf_name = package + ":" + it->name;
    ovf_member = it->name;
    ovf_text = read_text(pkg, it->offset, it->size, ovf_name);
  }
  const OvfEnvelope env = parse_ovf(ovf_text, ovf_name);

  // The manifest, when the package has one: the descriptor is checked now, each
  // disk before it is converted.
  std::map<std::string, Digest> manifest;
  std::string manifest_name;
  if (plain_ovf) {
    fs::path mf = fs::path(package).replace_extension(".mf");
    if (fs::exists(mf)) {
      File f = File::open(mf.string(), OpenMode::read_only);
      manifest_name = mf.string();
      manifest = parse_manifest(read_text(f, 0, f.size(), manifest_name), manifest_name);
    }
  } else {
    auto it = std::find_if(members.begin(), members.end(),
                           [](const TarMember& m) { return m.regular && ends_with(lower(m.name), ".mf"); });
    if (it != members.end()) {
      manifest_name = package + ":" + it->name;
      manifest = parse_manifest(read_text(pkg, it->offset, it->size, manifest_name), manifest_name);
    }
  }
  bool warned_unverifiable = false;
  // Checks bytes against the manifest entry for `name`, if there is one.
  auto verify = [&](const std::string& name, const std::function<std::string(const std::string&)>& digest) {
    auto it = manifest.find(normalize_member(name));
    if (it == manifest.end()) return;
    if (!can_verify(it->second)) {
      if (!warned_unverifiable)
        warn("{}: the manifest uses {} digests, which arche does not check; the disks are converted unverified",
             manifest_name, it->second.algorithm);
      warned_unverifiable = true;
      return;
    }
    if (digest(it->second.algorithm) != it->second.hex)
      fail(ErrorCategory::corrupt, "{}: '{}' does not match its {} digest in the manifest (damaged or altered package)",
           package, name, it->second.algorithm);
  };
  verify(ovf_member, [&](const std::string& algorithm) { return text_digest(algorithm, ovf_text); });

  // Plan every output first, so that nothing is converted for an import that
  // cannot complete (unknown references, existing files).
  std::vector<PlannedMachine> plan;
  std::vector<std::string> outputs;
  for (const OvfSystem& sys : env.systems) {
    PlannedMachine m{&sys, sys.name.empty() ? "vm" : sys.name, "", {}};
    const std::string base = file_safe(m.name);
    m.config_name = base + ".toml";
    std::vector<std::pair<const OvfFile*, uint64_t>> sources;
    std::vector<std::string> labels;
    std::vector<std::string> disk_ids = sys.disk_ids;
    if (disk_ids.empty() && sys.file_disks.empty() && env.systems.size() == 1)
      for (const OvfDisk& d : env.disks) disk_ids.push_back(d.id);  // no drives listed: every disk
    for (const std::string& id : disk_ids) {
      const OvfDisk* d = env.disk(id);
      if (!d) fail(ErrorCategory::format, "{}: '{}' uses disk '{}', which the DiskSection does not describe", ovf_name, m.name, id);
      const OvfFile* f = nullptr;
      if (!d->file_ref.empty()) {
        f = env.file(d->file_ref);
        if (!f) fail(ErrorCategory::format, "{}: disk '{}' names file '{}', which References does not list", ovf_name, id, d->file_ref);
      } else if (d->capacity == 0) {
        fail(ErrorCategory::format, "{}: disk '{}' has neither a file nor a capacity", ovf_name, id);
      }
      sources.emplace_back(f, d->capacity);
      labels.push_back(id);
    }
    for (const std::string& fid : sys.file_disks) {
      const OvfFile* f = env.file(fid);
      if (!f) fail(ErrorCategory::format, "{}: '{}' uses file '{}', which References does not list", ovf_name, m.name, fid);
      sources.emplace_back(f, 0);
      labels.push_back(fid);
    }
    for (size_t i = 0; i < sources.size(); ++i) {
      const OvfFile* f = sources[i].first;
      if (f) {
        if (!f->compression.empty() && f->compression != "identity")
          fail(ErrorCategory::unsupported, "{}: file '{}' is {}-compressed; unpack the package with ovftool first",
               ovf_name, f->href, f->compression);
        if (f->chunk_size)
          fail(ErrorCategory::unsupported, "{}: file '{}' is split into chunks, which arche does not import", ovf_name,
               f->href);
        if (f->href.find("://") != std::string::npos)
          fail(ErrorCategory::unsupported, "{}: file '{}' is a remote reference", ovf_name, f->href);
      }
      PlannedDisk d;
      d.file = f;
      d.capacity = sources[i].second;
      d.label = labels[i];
      d.final_name = fmt::format("{}-disk{}.{}", base, i + 1, extension_for(driver.name()));
      m.disks.push_back(std::move(d));
    }
    for (const PlannedDisk& d : m.disks) outputs.push_back(d.final_name);
    outputs.push_back(m.config_name);
    plan.push_back(std::move(m));
  }
  std::vector<std::string> sorted = outputs;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    fail(ErrorCategory::unsupported, "{}: two virtual systems have the same name; arche cannot import both into one directory",
         ovf_name);

  boost::system::error_code ec;
  const bool created_dir = !fs::exists(dir, ec);
  if (created_dir) {
    fs::create_directories(dir, ec);
    if (ec) fail(ErrorCategory::io, "cannot create {}: {}", dir, ec.message());
  } else if (!fs::is_directory(dir, ec)) {
    fail(ErrorCategory::usage, "{} exists and is not a directory", dir);
  }
  Staging staging(dir, created_dir);
  if (!options.overwrite)
    for (const std::string& name : outputs)
      if (fs::exists(fs::path(dir) / name, ec))
        fail(ErrorCategory::exists, "{} already exists (pass --overwrite to replace it)", (fs::path(dir) / name).string());

  ImportResult result;
  struct Staged {
    std::string temp, final_path;
  };
  std::vector<Staged> staged;
  for (PlannedMachine& m : plan) {
    ImportedMachine im;
    im.name = m.name;
    im.cpus = m.system->cpus;
    im.memory = m.system->memory;
    im.nics = m.system->nics.size();
    toml::array disks;
    for (const PlannedDisk& d : m.disks) {
      const std::string final_path = (fs::path(dir) / d.final_name).string();
      const std::string target = staging.temp(d.final_name, "disk");
      if (!d.file) {
        CreateOptions c;
        c.format = driver.name();
        c.size = d.capacity;
        c.options = options.options;
        c.overwrite = true;
        create_image(target, c);
      } else {
        std::string source;
        if (plain_ovf) {
          if (fs::path(d.file->href).is_absolute())
            fail(ErrorCategory::unsupported, "{}: file '{}' is an absolute path", ovf_name, d.file->href);
          source = resolve_backing_path(package, d.file->href);
          if (!fs::exists(source, ec))
            fail(ErrorCategory::not_found, "{}: disk file {} named by the OVF does not exist", ovf_name, source);
          verify(d.file->href, [&](const std::string& algorithm) {
            File f = File::open(source, OpenMode::read_only);
            return file_digest(algorithm, f, 0, f.size());
          });
        } else {
          const std::string want = normalize_member(d.file->href);
          auto it = std::find_if(members.begin(), members.end(),
                                 [&](const TarMember& mm) { return mm.regular && normalize_member(mm.name) == want; });
          if (it == members.end())
            fail(ErrorCategory::not_found, "{}: disk file '{}' named by the OVF is not in the archive", package,
                 d.file->href);
          if (d.file->size && *d.file->size != it->size)
            fail(ErrorCategory::format, "{}: '{}' holds {} bytes, the OVF says {} (damaged package?)", package,
                 d.file->href, it->size, *d.file->size);
          verify(d.file->href, [&](const std::string& algorithm) {
            return file_digest(algorithm, pkg, it->offset, it->size);
          });
          source = staging.temp(d.final_name, "source");
          extract(pkg, it->offset, it->size, source);
        }
        ConvertOptions c;
        c.target.format = driver.name();
        c.target.options = options.options;
        c.target.overwrite = true;
        c.threads = options.threads;
        c.durable = options.durable;
        try {
          ConvertStats s = convert(source, target, c);
          result.bytes_read += s.bytes_read;
        } catch (const Error& e) {
          fail(e.category(), "{}: disk '{}' ({}): {}", package, d.label, d.file->href, e.what());
        }
        if (!plain_ovf) {
          ::unlink(source.c_str());
          staging.forget_temp(source);
        }
      }
      OpenOptions o;
      o.format = driver.name();
      o.open_backing = false;
      const uint64_t size = open_image(target, o)->size();
      if (d.capacity && size != d.capacity)
        warn("{}: disk '{}' holds {} bytes, the OVF says {}", package, d.label, size, d.capacity);
      im.disks.push_back({final_path, driver.name(), size});
      staged.push_back({target, final_path});
      disks.push_back(toml::table{{"path", d.final_name}, {"format", driver.name()}, {"readonly", false}});
    }

    toml::table config{{"name", m.name}, {"cpus", static_cast<int64_t>(m.system->cpus)}};
    if (m.system->memory) config.insert("memory", size_string(m.system->memory));
    else warn("{}: the OVF gives no memory size for '{}'; set one in {}", package, m.name, m.config_name);
    config.insert("disk", std::move(disks));
    toml::array nets;
    for (const OvfNic& n : m.system->nics) {
      // arche's VMM has virtio-net; the OVF's adapter model (E1000, VmxNet3, ...)
      // is what the guest had under the old hypervisor.
      toml::table t{{"model", "virtio"}};
      if (!n.mac.empty()) t.insert("mac", n.mac);
      if (!n.network.empty()) t.insert("network", n.network);
      nets.push_back(std::move(t));
    }
    if (!nets.empty()) config.insert("net", std::move(nets));
    std::ostringstream text;
    text << "# Imported by arche from " << fs::path(package).filename().string() << "\n" << config << "\n";
    const std::string config_temp = staging.temp(m.config_name, "config");
    {
      File f = File::open(config_temp, OpenMode::create_new);
      const std::string s = text.str();
      f.write_all(0, std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
      if (options.durable) f.sync();
    }
    im.config = (fs::path(dir) / m.config_name).string();
    staged.push_back({config_temp, im.config});
    result.machines.push_back(std::move(im));
  }

  // Everything is converted: move it into place, the configurations last.
  for (const Staged& s : staged) {
    const unsigned flags = options.overwrite ? 0 : RENAME_NOREPLACE;
    if (::renameat2(AT_FDCWD, s.temp.c_str(), AT_FDCWD, s.final_path.c_str(), flags) != 0)
      throw_errno(errno, "rename " + s.temp + " to " + s.final_path);
    staging.forget_temp(s.temp);
    staging.placed(s.final_path);
  }
  if (options.durable) sync_directory(dir);
  staging.done();
  return result;
}

}  // namespace arche::image::ova
