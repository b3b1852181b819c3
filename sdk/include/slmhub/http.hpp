// HTTP routes as a plugin sees them. The host owns the server, authentication, limits and
// error rendering; a route names its method, path pattern and required role, so access is
// enforced in one place (the route table) and every route appears in /api/v1/plugins.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slmhub/json.hpp"

namespace slmhub {

// The staff roles a token may hold (DESIGN.md §5.2), besides `customer:<id>`.
const std::vector<std::string>& staff_roles();
// Whether `role` may be a route's role: "", or alternatives separated by '|', each a staff
// role or "customer" (any customer token): "viewer", "customer|viewer",
// "service_manager|approver".
bool valid_route_role(const std::string& role);
// A route role's alternatives, views into `role`: "customer|viewer" → {"customer", "viewer"}.
std::vector<std::string_view> route_role_alternatives(std::string_view role);

// Who is calling. `roles` are the token's roles; `admin` implies every role.
struct Principal {
  std::string id;  // token id, "system", or "anonymous"
  std::string name;
  std::set<std::string> roles;
  bool has_role(const std::string& role) const;
  // Whether a route's role admits this principal: any one of its alternatives ("R|S" takes the
  // role R or the role S; "customer" a customer token, which the handler limits to its own
  // records).
  bool admitted_by(const std::string& route_role) const;
  // For a `customer:<id>` principal, the customer id; empty otherwise.
  std::string customer() const;
};

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string path;                           // decoded path, without the query
  std::map<std::string, std::string> params;  // from {name} segments of the pattern
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  Principal principal;
  int max_json_depth = 64;

  std::string query_param(const std::string& name, const std::string& fallback = {}) const;
  // ?limit= of a list route: `fallback` when absent, else clamped to 1..`max`;
  // ValidationError (400) naming it when it is not a number.
  std::int64_t query_limit(std::int64_t fallback, std::int64_t max) const;
  std::string header(const std::string& name) const;  // lower-case name; "" if absent
  // The body as JSON; ValidationError (400) naming the JSON path when it is malformed.
  Json json() const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(const Json& value, int status = 200);
  static Response text(std::string body, std::string content_type, int status = 200);
  // A file someone else named and typed (an upload, a mail attachment), as a download: its
  // name in Content-Disposition (RFC 6266: an ASCII fallback and the UTF-8 name), and never
  // rendered as a page of ours (nosniff, a sandboxing Content-Security-Policy). A type that
  // is not one header line's worth of visible text is sent as application/octet-stream.
  static Response download(std::string body, const std::string& content_type,
                           const std::string& name);
  static Response no_content();
};

using Handler = std::function<Response(const Request&)>;

struct Route {
  std::string method;   // GET, POST, PUT, PATCH, DELETE
  std::string pattern;  // "/api/v1/services/{id}": literal segments and {name} segments
  // Role required (Principal::admitted_by): "viewer", "customer|viewer", ...; "" = no
  // authentication (health, webhooks with their own).
  std::string role;
  Handler handler;
  std::string summary;  // one line, for /api/v1/plugins and the OpenAPI check
};

class HttpRoutes {
 public:
  virtual ~HttpRoutes() = default;
  // Refuses (std::invalid_argument) a method+pattern that another route already has.
  virtual void add(Route route) = 0;
};

}  // namespace slmhub
