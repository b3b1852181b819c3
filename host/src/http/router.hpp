// The one route table of the server (STYLE.md: one root factory holding a route table).
// Each route names its method, path pattern, owner and required role, so authorization
// is decided here and /api/v1/plugins and the OpenAPI check read the same table.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "slmhub/http.hpp"

namespace slmhub::host {

struct RouteEntry {
  Route route;
  std::string owner;  // "host" or a plugin name
  std::vector<std::string> segments;
};

struct RouteMatch {
  const RouteEntry* entry = nullptr;
  std::map<std::string, std::string> params;
  // Methods that exist for the path when `entry` is null (405 rather than 404).
  std::vector<std::string> allowed;
};

class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern or a method+pattern already taken.
  void add(Route route, const std::string& owner);
  // Drops every route of `owner` (a plugin whose start() failed).
  void remove_owner(const std::string& owner);
  // Registration ends when the server starts serving; later adds are refused.
  void close() { closed_ = true; }
  RouteMatch match(const std::string& method, const std::string& path) const;
  std::vector<RouteEntry> routes() const;

 private:
  mutable std::shared_mutex mutex_;
  std::vector<RouteEntry> entries_;
  bool closed_ = false;
};

// Splits "/a/b/c" into {"a","b","c"}; an empty path segment is kept so that "//" does not
// match a route silently.
std::vector<std::string> split_path(const std::string& path);

}  // namespace slmhub::host
