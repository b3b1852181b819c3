#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace slmhub::host {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = path.starts_with('/') ? 1 : 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  if (!parts.empty() && parts.back().empty() && parts.size() > 1) parts.pop_back();
  return parts;
}

namespace {

bool is_param(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

bool same_shape(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (is_param(a[i]) != is_param(b[i])) return false;
    if (!is_param(a[i]) && a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

void Router::add(Route route, const std::string& owner) {
  static const std::vector<std::string> kMethods{"GET", "POST", "PUT", "PATCH", "DELETE"};
  if (std::find(kMethods.begin(), kMethods.end(), route.method) == kMethods.end())
    throw std::invalid_argument("route " + route.pattern + ": unknown method '" + route.method +
                                "' (allowed: GET, POST, PUT, PATCH, DELETE)");
  if (!route.pattern.starts_with('/'))
    throw std::invalid_argument("route '" + route.pattern + "': a pattern starts with '/'");
  if (!route.handler) throw std::invalid_argument("route " + route.pattern + ": no handler");
  // A misspelt role would make the route admin-only without a word.
  if (!valid_route_role(route.role))
    throw std::invalid_argument("route " + route.method + " " + route.pattern + " from " + owner +
                                ": unknown role '" + route.role +
                                "' (staff roles or customer, separated by '|', or \"\" for none)");
  auto segments = split_path(route.pattern);
  std::unique_lock lock(mutex_);
  if (closed_)
    throw std::logic_error("route " + route.method + " " + route.pattern + " from " + owner +
                           ": routes are registered in start(), before the server serves");
  for (const auto& e : entries_) {
    if (e.route.method == route.method && same_shape(e.segments, segments))
      throw std::invalid_argument("route " + route.method + " " + route.pattern + " from " + owner +
                                  " is already registered by " + e.owner + " as " +
                                  e.route.pattern);
  }
  entries_.push_back(RouteEntry{std::move(route), owner, std::move(segments)});
}

void Router::remove_owner(const std::string& owner) {
  std::unique_lock lock(mutex_);
  std::erase_if(entries_, [&](const RouteEntry& e) { return e.owner == owner; });
}

RouteMatch Router::match(const std::string& method, const std::string& path) const {
  // HEAD is GET without the body (RFC 9110 §9.3.2): monitors and proxies ask with it. The
  // server sends the GET answer's headers, Content-Length included, and Poco drops the body.
  const std::string& wanted = method == "HEAD" ? std::string("GET") : method;
  auto segments = split_path(path);
  RouteMatch result;
  std::shared_lock lock(mutex_);
  // Literal segments beat parameters: "/tickets/search" wins over "/tickets/{id}".
  int best_score = -1;
  for (const auto& e : entries_) {
    if (e.segments.size() != segments.size()) continue;
    int score = 0;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (is_param(e.segments[i])) {
        ok = !segments[i].empty();
      } else {
        ok = e.segments[i] == segments[i];
        score += ok ? 1 : 0;
      }
    }
    if (!ok) continue;
    if (e.route.method != wanted) {
      result.allowed.push_back(e.route.method);
      if (e.route.method == "GET") result.allowed.push_back("HEAD");
      continue;
    }
    if (score > best_score) {
      best_score = score;
      result.entry = &e;
    }
  }
  if (result.entry) {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& s = result.entry->segments[i];
      if (is_param(s)) result.params[s.substr(1, s.size() - 2)] = segments[i];
    }
    result.allowed.clear();
  }
  std::sort(result.allowed.begin(), result.allowed.end());
  result.allowed.erase(std::unique(result.allowed.begin(), result.allowed.end()),
                       result.allowed.end());
  return result;
}

std::vector<RouteEntry> Router::routes() const {
  std::shared_lock lock(mutex_);
  return entries_;
}

}  // namespace slmhub::host
