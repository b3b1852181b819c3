#include "slmhub/http.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub {

const std::vector<std::string>& staff_roles() {
  static const std::vector<std::string> kRoles{"viewer",   "operator", "service_manager",
                                               "approver", "billing",  "admin"};
  return kRoles;
}

std::vector<std::string_view> route_role_alternatives(std::string_view role) {
  std::vector<std::string_view> out;
  for (std::size_t from = 0;;) {
    const auto bar = role.find('|', from);
    out.push_back(role.substr(from, bar == std::string_view::npos ? bar : bar - from));
    if (bar == std::string_view::npos) return out;
    from = bar + 1;
  }
}

bool valid_route_role(const std::string& role) {
  if (role.empty()) return true;
  const auto& staff = staff_roles();
  const auto parts = route_role_alternatives(role);
  return std::all_of(parts.begin(), parts.end(), [&](std::string_view part) {
    return part == "customer" || std::find(staff.begin(), staff.end(), part) != staff.end();
  });
}

bool Principal::has_role(const std::string& role) const {
  return roles.contains(role) || roles.contains("admin");
}

bool Principal::admitted_by(const std::string& route_role) const {
  const auto parts = route_role_alternatives(route_role);
  return std::any_of(parts.begin(), parts.end(), [&](std::string_view part) {
    return part == "customer" ? !customer().empty() : has_role(std::string(part));
  });
}

std::string Principal::customer() const {
  for (const auto& r : roles) {
    if (r.starts_with("customer:")) return r.substr(9);
  }
  return {};
}

std::string Request::query_param(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

std::int64_t Request::query_limit(std::int64_t fallback, std::int64_t max) const {
  const std::string text = query_param("limit");
  if (text.empty()) return fallback;
  // The whole value, in range: "10abc", 0 or 5000 is a mistake to name, not a page of another
  // size than asked for.
  std::int64_t n = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (error != std::errc() || end != text.data() + text.size() || n < 1 || n > max) {
    // quote_text: the value is any bytes the client sent; the message must stay UTF-8.
    throw ValidationError("limit",
                          quote_text(text) + " is not a number from 1 to " + std::to_string(max));
  }
  return n;
}

std::string Request::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Json Request::json() const { return parse_json(body, max_json_depth); }

Response Response::json(const Json& value, int status) {
  Response r;
  r.status = status;
  r.body = value.dump();
  return r;
}

Response Response::text(std::string body, std::string content_type, int status) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::download(std::string body, const std::string& content_type,
                            const std::string& name) {
  const bool visible =
      !content_type.empty() && std::all_of(content_type.begin(), content_type.end(),
                                           [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
  Response r = text(std::move(body), visible ? content_type : "application/octet-stream");
  // The quoted form never holds a quote, a backslash or a control character of the name.
  std::string ascii;
  for (const unsigned char c : name) {
    ascii += c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '_' : static_cast<char>(c);
  }
  r.headers.emplace_back("Content-Disposition", ascii.empty() ? std::string("attachment")
                                                              : "attachment; filename=\"" + ascii +
                                                                    "\"; filename*=UTF-8''" +
                                                                    percent_encode(name));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy", "sandbox");
  return r;
}

Response Response::no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace slmhub
