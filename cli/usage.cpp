#include "cli/usage.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/error.h"

namespace arche::cli {

namespace {

class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() {
    label("SUBCOMMAND", "COMMAND");
    label("SUBCOMMANDS", "COMMAND...");
    label("Positionals", "Arguments");
  }
  std::string make_option_name(const CLI::Option* opt, bool is_positional) const override {
    return is_positional ? display_name(*opt) : CLI::Formatter::make_option_name(opt, false);
  }
};

std::vector<const CLI::App*> named_commands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_disabled(); });
}

std::string command_list(const CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : named_commands(app))
    if (!sub->get_group().empty()) out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

bool has_arguments(const CLI::App& app) {
  return !app.get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
}

// An option of `app` or of a command above it (options fall through upwards).
const CLI::Option* find_option(const CLI::App& app, const std::string& name) {
  for (const CLI::App* a = &app; a; a = a->get_parent())
    for (const CLI::Option* o : a->get_options())
      if (o->check_name(name) || o->get_name() == name) return o;
  return nullptr;
}

std::string display(const CLI::App& app, const std::string& name) {
  const CLI::Option* o = find_option(app, name);
  return o ? display_name(*o) : name;
}

std::string hint(const CLI::App& command) { return fmt::format("(see: {} --help)", command_path(command)); }

// "arche image info: " for messages about one command; nothing at the top.
std::string prefix(const CLI::App& command) {
  std::string path = command_path(command);
  return command.get_parent() ? path.substr(path.find(' ') + 1) + ": " : "";
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// CLI11 writes "NAME: rest" for many errors; put the help's name in front.
std::string rename_leading_option(const CLI::App& command, const std::string& text) {
  size_t colon = text.find(": ");
  if (colon == std::string::npos) return text;
  const CLI::Option* o = find_option(command, text.substr(0, colon));
  return o ? display_name(*o) + text.substr(colon) : text;
}

std::string type_phrase(const std::string& type) {
  if (type == "UINT") return "a whole number";
  if (type == "INT") return "a whole number";
  if (type == "FLOAT") return "a number";
  return "a " + type;
}

std::string reword(const CLI::ParseError& error, const CLI::App& command) {
  const std::string text = error.what();
  if (dynamic_cast<const CLI::RequiredError*>(&error)) {
    if (text == "A subcommand is required" || starts_with(text, "Requires at least"))
      return fmt::format("a command is required: {}", command_list(command));
    if (ends_with(text, " is required")) {
      std::string name = text.substr(0, text.size() - std::string(" is required").size());
      const CLI::Option* o = find_option(command, name);
      if (o && o->get_positional()) return fmt::format("{} is missing", display_name(*o));
      return fmt::format("{} is required", display(command, name));
    }
    return text;
  }
  if (dynamic_cast<const CLI::ExcludesError*>(&error)) {
    size_t at = text.find(" excludes ");
    if (at != std::string::npos)
      return fmt::format("{} and {} cannot be used together", display(command, text.substr(0, at)),
                         display(command, text.substr(at + 10)));
    return text;
  }
  if (dynamic_cast<const CLI::RequiresError*>(&error)) {
    size_t at = text.find(" requires ");
    if (at != std::string::npos)
      return fmt::format("{} needs {}", display(command, text.substr(0, at)), display(command, text.substr(at + 10)));
    return text;
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&error)) {
    size_t colon = text.find(": ");
    std::string words = colon == std::string::npos ? text : text.substr(colon + 2);
    bool several = words.find(' ') != std::string::npos;
    return fmt::format("unexpected argument{} '{}'", several ? "s" : "", words);
  }
  if (dynamic_cast<const CLI::ConversionError*>(&error)) {
    // "Could not convert: --threads = x"
    const std::string lead = "Could not convert: ";
    size_t eq = text.find(" = ");
    if (starts_with(text, lead) && eq != std::string::npos) {
      std::string name = text.substr(lead.size(), eq - lead.size());
      const CLI::Option* o = find_option(command, name);
      std::string type = o ? o->get_type_name() : "";
      return fmt::format("{}: '{}' is not {}", o ? display_name(*o) : name, text.substr(eq + 3),
                         type.empty() ? "a valid value" : type_phrase(type));
    }
    return rename_leading_option(command, text);
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error)) {
    // "--format: 1 required TEXT missing"
    size_t colon = text.find(": ");
    if (colon != std::string::npos && ends_with(text, " missing")) {
      const CLI::Option* o = find_option(command, text.substr(0, colon));
      if (o) return fmt::format("{} needs a value", display_name(*o));
    }
    return rename_leading_option(command, text);
  }
  if (dynamic_cast<const CLI::ValidationError*>(&error)) {
    // "--repair: foo not in {leaks,all}"
    size_t colon = text.find(": "), at = text.rfind(" not in {");
    if (colon != std::string::npos && at != std::string::npos && at > colon && ends_with(text, "}")) {
      std::string choices = text.substr(at + 9, text.size() - at - 10);
      for (size_t comma = 0; (comma = choices.find(',', comma)) != std::string::npos; comma += 2)
        choices.replace(comma, 1, ", ");
      return fmt::format("{}: '{}' is not one of: {}", display(command, text.substr(0, colon)),
                         text.substr(colon + 2, at - colon - 2), choices);
    }
  }
  return rename_leading_option(command, text);
}

}  // namespace

std::string display_name(const CLI::Option& option) {
  if (!option.get_positional() || option.nonpositional()) return option.get_name(false, true);
  std::string name = option.get_name(true, false);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return c == '-' ? '_' : static_cast<char>(std::toupper(c)); });
  return name;
}

void apply_help_conventions(CLI::App& app) {
  app.formatter(std::make_shared<HelpFormatter>());
  for (CLI::App* sub : app.get_subcommands([](CLI::App* s) { return !s->get_name().empty(); })) {
    if (sub->get_group() == "Subcommands") sub->group("Commands");
    apply_help_conventions(*sub);
  }
}

void check_command_words(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") return;
    if (word.size() > 1 && word[0] == '-') {
      // An option; skip its value when it takes one and it is not attached.
      if (word.find('=') == std::string::npos && (starts_with(word, "--") || word.size() == 2)) {
        const CLI::Option* o = find_option(*current, word);
        if (o && o->get_items_expected_min() > 0) ++i;
      }
      continue;
    }
    // A word where a command belongs: in a group (commands, no arguments of its own).
    if (named_commands(*current).empty() || has_arguments(*current)) return;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : named_commands(*current))
      if (sub->check_name(word)) next = sub;
    if (!next) {
      std::string known = command_list(*current);
      fail(ErrorCategory::usage, "{}unknown command '{}'{} {}", prefix(*current), word,
           known.empty() ? "" : " (commands: " + known + ")", hint(*current));
    }
    current = next;
  }
}

const CLI::App& deepest_command(const CLI::App& app) {
  const CLI::App* command = &app;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  return *command;
}

std::string command_path(const CLI::App& command) {
  std::string path = command.get_name();
  for (const CLI::App* a = command.get_parent(); a; a = a->get_parent()) path = a->get_name() + " " + path;
  return path;
}

std::string explain_parse_error(const CLI::ParseError& error, const CLI::App& app) {
  const CLI::App& command = deepest_command(app);
  return fmt::format("{}{} {}", prefix(command), reword(error, command), hint(command));
}

}  // namespace arche::cli
