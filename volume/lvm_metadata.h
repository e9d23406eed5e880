// LVM2's text metadata format (the "Text Format Volume Group" that every PV's
// metadata area holds), parsed into a tree of sections and values:
//
//   vg0 {                               # a section: name { ... }
//     id = "77JdMT-DrRk-..."            # a value: name = string | number | [array]
//     extent_size = 8192
//     status = ["RESIZEABLE", "READ"]
//     physical_volumes { pv0 { ... } }
//   }
//   contents = "Text Format Volume Group"
//
// Strings are double-quoted with \" and \\ escapes; '#' starts a comment outside
// strings. The text comes from a guest's disk: nesting is limited, numbers are
// range-checked, and any syntax error is one format error with the line number.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace arche::volume::lvm {

struct Value {
  enum class Kind : uint8_t { integer, real, string, array };
  Kind kind = Kind::integer;
  int64_t integer = 0;
  double real = 0;
  std::string string;
  std::vector<Value> items;  // for arrays
};

struct NamedSection;

struct Section {
  std::vector<std::pair<std::string, Value>> values;
  std::vector<NamedSection> sections;  // in text order

  const Value* value(std::string_view name) const;
  const Section* section(std::string_view name) const;
};

struct NamedSection {
  std::string name;
  Section section;
};

// Throws a format error ("LVM metadata line 12: ...") on anything but well-formed text.
Section parse_metadata(std::string_view text);

}  // namespace arche::volume::lvm
