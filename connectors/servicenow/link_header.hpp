// URLs for the ServiceNow client: the instance's origin, query strings, and the `next` link of
// a Table API page (RFC 8288 Link headers: several links per header, several headers, rel as a
// token or a quoted list, commas and semicolons inside the <URI>).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slmhub::servicenow {

// scheme://host:port of an absolute http(s) URL, lower-cased, with the default port filled in.
struct Origin {
  std::string scheme;
  std::string host;  // an IPv6 address keeps its brackets
  int port = 0;
  bool operator==(const Origin&) const = default;
  std::string text() const;  // "https://host:443"
};

// The origin of an absolute http(s) URL; nullopt when `url` is not one (or carries user
// information).
std::optional<Origin> origin_of(std::string_view url);

// `url` with query parameter `name` set to `value` (replacing every earlier occurrence,
// appended when absent). `value` is encoded here; other parameters are kept as they were.
std::string with_query_param(const std::string& url, std::string_view name, std::string_view value);

// The value of query parameter `name` in `url`, decoded; nullopt when absent.
std::optional<std::string> query_param(const std::string& url, std::string_view name);

// The URI of the first link whose rel includes "next" (case-insensitive) in the Link header
// values `headers`; nullopt when there is none. The URI is returned as written.
std::optional<std::string> find_next_link(const std::vector<std::string>& headers);

}  // namespace slmhub::servicenow
