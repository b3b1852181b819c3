// Tech Alert templates (overrides an operator drops in the template directory): Templates
// checks a template when it loads and refuses it with a TemplateError naming the line, or
// accepts it; what it accepts renders against the sample context without an exception (the
// tokenizer accepts only what kainjow parses). The first byte of the input picks the part
// (email subject, text or html, or webhook text), the rest is the template. A subject renders
// on one line, and the line marker used internally never reaches the output.
#include <map>
#include <optional>
#include <string>

#include "alerts.hpp"
#include "checks.hpp"
#include "templates.hpp"

namespace slmhub::fuzz {

void check_mustache(std::string_view input) {
  if (input.empty()) return;
  static const char* const kParts[][2] = {
      {"email", "subject"}, {"email", "text"}, {"email", "html"}, {"webhook", "text"}};
  const auto& [channel, part] = kParts[static_cast<unsigned char>(input[0]) % 4];
  const std::string name = std::string("planned_outage.") + channel + "." + part;
  static const Json kSample = alerts::sample_context();

  std::optional<alerts::Templates> templates;
  try {
    templates.emplace(std::map<std::string, std::string>{{name, std::string(input.substr(1))}}, "",
                      alerts::alert_kinds(), kSample);
  } catch (const alerts::TemplateError& e) {
    // Every refusal of a template text names its line: "built-in NAME:LINE: what".
    const std::string prefix = "built-in " + name + ":";
    const std::string what = e.what();
    expect(what.starts_with(prefix) && what.size() > prefix.size() && what[prefix.size()] >= '0' &&
               what[prefix.size()] <= '9',
           "a TemplateError without a line: " + what);
    return;
  }
  const std::string out = templates->render("planned_outage", channel, part, kSample);
  expect(out.find('\x01') == std::string::npos, "the line marker reaches the output");
  if (std::string_view(part) == "subject") {
    expect(out.find('\n') == std::string::npos, "a subject renders on more than one line");
  }
}

}  // namespace slmhub::fuzz
