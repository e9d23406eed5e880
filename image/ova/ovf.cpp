#include "image/ova/ovf.h"

#include <pugixml.hpp>

#include <cctype>
#include <charconv>

#include "core/error.h"

namespace arche::image::ova {

namespace {

constexpr size_t kMaxItems = 100000;

std::string_view local_name(const char* name) {
  std::string_view n(name);
  size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

pugi::xml_node child(pugi::xml_node node, std::string_view name) {
  for (pugi::xml_node c : node.children())
    if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
  return {};
}

std::string attr(pugi::xml_node node, std::string_view name) {
  for (pugi::xml_attribute a : node.attributes())
    if (local_name(a.name()) == name && std::string_view(a.name()).rfind("xmlns", 0) != 0) return a.value();
  return {};
}

std::string text_of(pugi::xml_node node) {
  std::string t = node.child_value();
  size_t b = t.find_first_not_of(" \t\r\n"), e = t.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
}

uint64_t parse_number(std::string_view s, const std::string& what, const char* field) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    fail(ErrorCategory::format, "{}: OVF {} '{}' is not a number", what, field, std::string(s.substr(0, 100)));
  return v;
}

uint64_t checked_multiply(uint64_t a, uint64_t b, const std::string& what, const char* field) {
  if (b && a > UINT64_MAX / b) fail(ErrorCategory::format, "{}: OVF {} is too large", what, field);
  return a * b;
}

void collect_systems(pugi::xml_node node, std::vector<pugi::xml_node>& out, int depth) {
  if (depth > 32) return;  // collections nest; nothing real nests this deep
  for (pugi::xml_node c : node.children()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view n = local_name(c.name());
    if (n == "VirtualSystem") out.push_back(c);
    else if (n == "VirtualSystemCollection") collect_systems(c, out, depth + 1);
  }
}

OvfSystem parse_system(pugi::xml_node vs, const std::string& what) {
  OvfSystem s;
  s.id = attr(vs, "id");
  pugi::xml_node name = child(vs, "Name");
  s.name = name ? text_of(name) : s.id;
  if (s.name.empty()) s.name = s.id;
  pugi::xml_node hw = child(vs, "VirtualHardwareSection");
  if (!hw) fail(ErrorCategory::format, "{}: virtual system '{}' has no VirtualHardwareSection", what, s.name);
  size_t items = 0;
  for (pugi::xml_node item : hw.children()) {
    if (item.type() != pugi::node_element) continue;
    std::string_view kind = local_name(item.name());
    if (kind != "Item" && kind != "StorageItem" && kind != "EthernetPortItem") continue;
    if (++items > kMaxItems) fail(ErrorCategory::format, "{}: too many hardware items", what);
    const std::string type_text = text_of(child(item, "ResourceType"));
    if (type_text.empty()) continue;
    const uint64_t type = parse_number(type_text, what, "ResourceType");
    if (type == 3) {  // processor
      const uint64_t n = parse_number(text_of(child(item, "VirtualQuantity")), what, "CPU count");
      if (n == 0 || n > 4096) fail(ErrorCategory::format, "{}: virtual system '{}' has {} CPUs", what, s.name, n);
      s.cpus = n;
    } else if (type == 4) {  // memory
      const uint64_t n = parse_number(text_of(child(item, "VirtualQuantity")), what, "memory size");
      std::string units = text_of(child(item, "AllocationUnits"));
      const uint64_t unit = units.empty() ? (1ull << 20) : allocation_unit_bytes(units, what);
      s.memory = checked_multiply(n, unit, what, "memory size");
    } else if (type == 17) {  // disk drive
      const std::string host = text_of(child(item, "HostResource"));
      auto strip = [&](std::string_view prefix) -> std::optional<std::string> {
        for (std::string_view p : {std::string_view("ovf:"), std::string_view("")}) {
          std::string full = std::string(p) + std::string(prefix);
          if (host.rfind(full, 0) == 0) return host.substr(full.size());
        }
        return std::nullopt;
      };
      if (auto id = strip("/disk/")) s.disk_ids.push_back(*id);
      else if (auto fid = strip("/file/")) s.file_disks.push_back(*fid);
      else if (!host.empty())
        fail(ErrorCategory::format, "{}: disk drive of '{}' names '{}', neither a disk nor a file", what, s.name, host);
    } else if (type == 10) {  // Ethernet adapter
      OvfNic nic;
      nic.model = text_of(child(item, "ResourceSubType"));
      nic.network = text_of(child(item, "Connection"));
      const std::string address = text_of(child(item, "Address"));
      if (!address.empty()) {
        nic.mac = normalize_mac(address);
        if (nic.mac.empty())
          fail(ErrorCategory::format, "{}: network adapter of '{}' has an invalid MAC address '{}'", what, s.name,
               address.substr(0, 64));
      }
      s.nics.push_back(std::move(nic));
    }
  }
  return s;
}

}  // namespace

const OvfFile* OvfEnvelope::file(std::string_view id) const {
  for (const OvfFile& f : files)
    if (f.id == id) return &f;
  return nullptr;
}

const OvfDisk* OvfEnvelope::disk(std::string_view id) const {
  for (const OvfDisk& d : disks)
    if (d.id == id) return &d;
  return nullptr;
}

uint64_t allocation_unit_bytes(std::string_view units, const std::string& what) {
  std::string u;
  for (char c : units)
    if (c != ' ' && c != '\t') u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u == "byte" || u == "bytes") return 1;
  if (u == "kilobytes" || u == "kb") return 1ull << 10;
  if (u == "megabytes" || u == "mb") return 1ull << 20;
  if (u == "gigabytes" || u == "gb") return 1ull << 30;
  if (u == "terabytes" || u == "tb") return 1ull << 40;
  // "byte*2^20", "byte*10^6"
  if (u.rfind("byte*", 0) == 0) {
    std::string_view rest = std::string_view(u).substr(5);
    size_t caret = rest.find('^');
    if (caret != std::string_view::npos) {
      uint64_t base = 0, exponent = 0;
      auto [p1, e1] = std::from_chars(rest.data(), rest.data() + caret, base);
      auto [p2, e2] = std::from_chars(rest.data() + caret + 1, rest.data() + rest.size(), exponent);
      if (e1 == std::errc() && e2 == std::errc() && p1 == rest.data() + caret && p2 == rest.data() + rest.size() &&
          (base == 2 || base == 10) && exponent <= (base == 2 ? 60u : 18u)) {
        uint64_t v = 1;
        for (uint64_t i = 0; i < exponent; ++i) v *= base;
        return v;
      }
    }
  }
  fail(ErrorCategory::format, "{}: OVF allocation units '{}' are not understood", what, std::string(units.substr(0, 64)));
}

std::string normalize_mac(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (c != ':' && c != '-' && c != '.') return {};
  }
  if (hex.size() != 12) return {};
  std::string out;
  for (size_t i = 0; i < 12; i += 2) {
    if (i) out += ':';
    out += hex.substr(i, 2);
  }
  return out;
}

OvfEnvelope parse_ovf(std::string_view xml, const std::string& what) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_auto);
  if (!parsed)
    fail(ErrorCategory::format, "{}: the OVF descriptor is not valid XML ({} at offset {})", what,
         parsed.description(), parsed.offset);
  pugi::xml_node envelope = doc.document_element();
  if (!envelope || local_name(envelope.name()) != "Envelope")
    fail(ErrorCategory::format, "{}: not an OVF descriptor (the root element is not an Envelope)", what);

  OvfEnvelope env;
  if (pugi::xml_node refs = child(envelope, "References")) {
    for (pugi::xml_node f : refs.children()) {
      if (f.type() != pugi::node_element || local_name(f.name()) != "File") continue;
      OvfFile file;
      file.id = attr(f, "id");
      file.href = attr(f, "href");
      if (file.id.empty() || file.href.empty())
        fail(ErrorCategory::format, "{}: a File reference lacks its id or href", what);
      if (std::string size = attr(f, "size"); !size.empty()) file.size = parse_number(size, what, "file size");
      file.compression = attr(f, "compression");
      if (std::string chunk = attr(f, "chunkSize"); !chunk.empty())
        file.chunk_size = parse_number(chunk, what, "chunk size");
      env.files.push_back(std::move(file));
    }
  }
  if (pugi::xml_node section = child(envelope, "DiskSection")) {
    for (pugi::xml_node d : section.children()) {
      if (d.type() != pugi::node_element || local_name(d.name()) != "Disk") continue;
      OvfDisk disk;
      disk.id = attr(d, "diskId");
      disk.file_ref = attr(d, "fileRef");
      disk.format = attr(d, "format");
      if (disk.id.empty()) fail(ErrorCategory::format, "{}: a Disk has no diskId", what);
      std::string capacity = attr(d, "capacity");
      if (capacity.rfind("${", 0) == 0)
        fail(ErrorCategory::unsupported, "{}: disk '{}' takes its capacity from an OVF property ({})", what, disk.id,
             capacity);
      if (!capacity.empty()) {
        std::string units = attr(d, "capacityAllocationUnits");
        disk.capacity = checked_multiply(parse_number(capacity, what, "disk capacity"),
                                         units.empty() ? 1 : allocation_unit_bytes(units, what), what, "disk capacity");
      }
      env.disks.push_back(std::move(disk));
    }
  }
  std::vector<pugi::xml_node> systems;
  collect_systems(envelope, systems, 0);
  if (systems.empty()) fail(ErrorCategory::format, "{}: the OVF descriptor describes no virtual system", what);
  for (pugi::xml_node vs : systems) env.systems.push_back(parse_system(vs, what));
  return env;
}

}  // namespace arche::image::ova
