// html_to_text, the ticket body of HTML-only mail: any bytes in, no crash or quadratic blow-up
// (libFuzzer's -timeout); UTF-8 in gives UTF-8 out (character references decoded included),
// with "\n" line ends and no trailing newline.
#include <string>

#include "checks.hpp"
#include "html_text.hpp"

namespace slmhub::fuzz {

void check_html_text(std::string_view input) {
  const std::string text = mail::html_to_text(input);
  if (valid_utf8(input)) expect(valid_utf8(text), "html_to_text of UTF-8 is not UTF-8");
  expect(text.find('\r') == std::string::npos, "html_to_text keeps a CR");
  expect(text.empty() || text.back() != '\n', "html_to_text ends with a newline");
}

}  // namespace slmhub::fuzz
