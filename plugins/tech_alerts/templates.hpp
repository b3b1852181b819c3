// The Mustache templates of Tech Alert notices (DOMAIN.md §8): the compiled-in defaults plus an
// optional directory of overrides, every one parsed and checked when the plugin loads, so a
// typo in a template is a start-up error naming the file and line, not a blank in a customer's
// mail. The template language is kept small: variables, sections and comments; no partials and
// no delimiter changes.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "slmhub/json.hpp"

namespace slmhub::alerts {

// A template that cannot be used. The message is "FILE:LINE: what" (FILE is the path of the
// override or "built-in <name>"), or "FILE: what" when no line applies (a bad file name).
struct TemplateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Templates {
 public:
  // `builtin`: name -> template text (compiled-in defaults, e.g. "default.email.html").
  // `dir`: override directory, "" for none; a file "<name>.mustache" there replaces the
  //   built-in of that name or adds a new one (e.g. "planned_outage.email.subject"). Files
  //   not ending in ".mustache" are ignored. Every name must be "<kind>.<channel>.<part>" with
  //   kind in `kinds` or "default", channel "email" (part subject, text or html) or "webhook"
  //   (part text).
  // `sample`: an object with every variable a template may use; a one-element array shows the
  //   shape of its items. Each variable or section name must resolve against it the way it
  //   would at render time ("." only inside a section); a variable that names a list or an
  //   object (which would render nothing) is refused too.
  // Throws TemplateError for the first problem, in name order; a missing or unreadable `dir`
  // is an error as well.
  Templates(std::map<std::string, std::string> builtin, const std::string& dir,
            const std::vector<std::string>& kinds, const Json& sample);

  // The template "<kind>.<channel>.<part>" if present, else "default.<channel>.<part>",
  // rendered with `context` (the shape of `sample`); std::out_of_range if neither exists.
  // In html parts {{x}} is HTML-escaped (& < > " ') and {{{x}}} / {{&x}} is raw; other parts
  // escape nothing. A subject comes back on one line: line breaks (and the blanks around them)
  // become one space, and leading and trailing blanks are trimmed. An empty string and null are
  // false in sections, so {{#alert.window}}...{{/alert.window}} disappears when there is no
  // window. Safe to call from several threads at once.
  std::string render(const std::string& kind, const std::string& channel, const std::string& part,
                     const Json& context) const;

  // Where the template render() would use came from, for logs: the override's path or
  // "built-in default.email.html"; std::out_of_range if neither exists.
  std::string origin(const std::string& kind, const std::string& channel,
                     const std::string& part) const;

  // Every loaded template name, sorted.
  std::vector<std::string> names() const;

 private:
  struct Compiled;  // the parsed template; keeps the Mustache library out of this header
  struct Entry {
    std::string origin;
    std::shared_ptr<const Compiled> compiled;
  };
  const Entry& find(const std::string& kind, const std::string& channel,
                    const std::string& part) const;

  std::map<std::string, Entry> templates_;
};

// The compiled-in defaults: "default.email.subject", "default.email.text",
// "default.email.html" and "default.webhook.text".
std::map<std::string, std::string> builtin_templates();

// The context the plugin renders with, filled with example values: every variable a template
// may use, in its real shape. The plugin checks templates against it at load.
Json sample_context();

}  // namespace slmhub::alerts
