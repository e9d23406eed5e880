#include "volume/lvm_metadata.h"

#include <charconv>
#include <cstdlib>

#include "core/error.h"

namespace arche::volume::lvm {

const Value* Section::value(std::string_view name) const {
  for (const auto& [n, v] : values)
    if (n == name) return &v;
  return nullptr;
}

const Section* Section::section(std::string_view name) const {
  for (const auto& [n, s] : sections)
    if (n == name) return &s;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 16;  // vg { logical_volumes { lv { segment { ... } } } } needs 4

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Section parse() {
    Section root = section_body(0);
    skip_space();
    if (pos_ < text_.size()) error("unexpected '}'");
    return root;
  }

 private:
  [[noreturn]] void error(std::string_view what) const {
    fail(ErrorCategory::format, "LVM metadata line {}: {}", line_, what);
  }

  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\0') {
        ++pos_;  // the area's text ends in a NUL
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '+' || c == '.';
  }

  std::string name() {
    size_t start = pos_;
    while (pos_ < text_.size() && name_char(text_[pos_])) ++pos_;
    if (pos_ == start) error(fmt::format("expected a name, found '{}'", text_[pos_]));
    return std::string(text_.substr(start, pos_ - start));
  }

  // Entries until '}' (depth > 0) or the end of the text (depth 0).
  Section section_body(int depth) {
    Section s;
    while (true) {
      skip_space();
      if (pos_ >= text_.size()) {
        if (depth > 0) error("a section is not closed");
        return s;
      }
      if (text_[pos_] == '}') {
        if (depth == 0) return s;  // parse() reports it
        ++pos_;
        return s;
      }
      std::string key = name();
      skip_space();
      if (pos_ >= text_.size()) error("unexpected end after '" + key + "'");
      if (text_[pos_] == '{') {
        if (depth + 1 > kMaxDepth) error("sections nested too deeply");
        ++pos_;
        Section child = section_body(depth + 1);
        s.sections.push_back(NamedSection{std::move(key), std::move(child)});
      } else if (text_[pos_] == '=') {
        ++pos_;
        skip_space();
        s.values.emplace_back(std::move(key), value(true));
      } else {
        error(fmt::format("expected '=' or '{{' after '{}'", key));
      }
    }
  }

  Value value(bool array_allowed) {
    if (pos_ >= text_.size()) error("a value is missing");
    char c = text_[pos_];
    if (c == '"') return string_value();
    if (c == '[') {
      if (!array_allowed) error("arrays cannot be nested");
      ++pos_;
      Value v;
      v.kind = Value::Kind::array;
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return v;
      }
      while (true) {
        skip_space();
        v.items.push_back(value(false));
        skip_space();
        if (pos_ >= text_.size()) error("an array is not closed");
        if (text_[pos_] == ']') {
          ++pos_;
          return v;
        }
        if (text_[pos_] != ',') error("expected ',' or ']' in an array");
        ++pos_;
      }
    }
    return number();
  }

  Value string_value() {
    ++pos_;
    Value v;
    v.kind = Value::Kind::string;
    while (true) {
      if (pos_ >= text_.size()) error("a string is not closed");
      char c = text_[pos_++];
      if (c == '"') return v;
      if (c == '\n') ++line_;
      if (c == '\\') {
        if (pos_ >= text_.size()) error("a string is not closed");
        c = text_[pos_++];
      }
      v.string.push_back(c);
    }
  }

  Value number() {
    size_t start = pos_;
    while (pos_ < text_.size() && (name_char(text_[pos_]))) ++pos_;
    std::string_view t = text_.substr(start, pos_ - start);
    if (t.empty()) error(fmt::format("unexpected '{}'", text_[start]));
    Value v;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v.integer);
    if (ec == std::errc() && end == t.data() + t.size()) return v;
    if (ec == std::errc::result_out_of_range) error(fmt::format("number {} is out of range", t));
    std::string copy(t);
    char* stop = nullptr;
    v.real = std::strtod(copy.c_str(), &stop);
    if (stop != copy.c_str() + copy.size()) error(fmt::format("'{}' is not a value", t));
    v.kind = Value::Kind::real;
    return v;
  }

  std::string_view text_;
  size_t pos_ = 0;
  unsigned line_ = 1;
};

}  // namespace

Section parse_metadata(std::string_view text) { return Parser(text).parse(); }

}  // namespace arche::volume::lvm
