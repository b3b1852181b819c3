// The ServiceNow client's URL handling of what an instance sends back: the `next` Link of a
// Table API page (RFC 8288: several links and headers, quoted and token rels, commas and
// semicolons inside <URI>), the origin check of that link (origin_of) and the paging query
// parameters. Input lines: a URL, a parameter name, a value, then Link header values.
// find_next_link returns a URI as written in one of the headers; origin_of's result is
// http(s), lower-case, with a port 1-65535, and reads back from its own text(); a parameter
// set with with_query_param reads back with query_param.
#include <string>
#include <vector>

#include "checks.hpp"
#include "link_header.hpp"

namespace slmhub::fuzz {

void check_sn_link(std::string_view input) {
  std::vector<std::string> lines;
  while (true) {
    const auto end = input.find('\n');
    lines.emplace_back(input.substr(0, end));
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + 1);
  }
  lines.resize(std::max<std::size_t>(lines.size(), 3));
  const std::string& url = lines[0];
  const std::string& name = lines[1];
  const std::string& value = lines[2];
  const std::vector<std::string> headers(lines.begin() + 3, lines.end());

  if (const auto origin = servicenow::origin_of(url)) {
    expect(origin->scheme == "http" || origin->scheme == "https", "origin_of: a scheme");
    expect(origin->port >= 1 && origin->port <= 65535, "origin_of: a port");
    expect(!origin->host.empty(), "origin_of: an empty host");
    for (char c : origin->host) expect(!(c >= 'A' && c <= 'Z'), "origin_of: an upper-case host");
    expect(servicenow::origin_of(origin->text()) == origin,
           "origin_of(o.text()) != o for " + origin->text());
  }

  const std::string with = servicenow::with_query_param(url, name, value);
  expect(servicenow::query_param(with, name) == value,
         "query_param(with_query_param(url, name, value), name) != value");
  (void)servicenow::query_param(url, name);

  if (const auto next = servicenow::find_next_link(headers)) {
    bool found = false;
    for (const auto& h : headers) found = found || h.find("<" + *next + ">") != std::string::npos;
    expect(found, "find_next_link returns a URI that no header has in <>");
  }
}

}  // namespace slmhub::fuzz
