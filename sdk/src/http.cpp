#include "slmhub/http.hpp"

namespace slmhub {

bool Principal::has_role(const std::string& role) const {
  return roles.contains(role) || roles.contains("admin");
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

Response Response::no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

}  // namespace slmhub
