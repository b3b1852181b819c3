// The request target of every HTTP request, read the way RootHandler::dispatch reads it
// (host/src/http/http_server.cpp): Poco::URI of the target, its decoded path and
// getQueryParameters(), each refusing with a Poco::Exception (a 400) and nothing else; then
// Router::match of the path against a table of the server's real route shapes, and the query
// helpers handlers use (query_param, query_limit: a ValidationError or a limit in range).
// A match names a route of the path's method whose literal segments equal the path's and
// whose parameters are non-empty; no match lists each allowed method once, sorted.
#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <algorithm>
#include <string>
#include <vector>

#include "checks.hpp"
#include "http/router.hpp"

namespace slmhub::fuzz {
namespace {

const host::Router& router() {
  static const host::Router* const kRouter = [] {
    auto* r = new host::Router;
    const char* const kRoutes[][2] = {
        {"GET", "/healthz"},
        {"GET", "/status"},
        {"GET", "/status.json"},
        {"GET", "/api/v1/tickets"},
        {"POST", "/api/v1/tickets"},
        {"GET", "/api/v1/tickets/search"},
        {"GET", "/api/v1/tickets/{id}"},
        {"PATCH", "/api/v1/tickets/{id}"},
        {"POST", "/api/v1/tickets/{id}/messages"},
        {"GET", "/api/v1/customers/{id}/"},
        {"GET", "/api/v1/alerts/{id}/deliveries"},
        {"POST", "/api/v1/alerts/{id}/deliveries/{delivery}/resend"},
        {"GET", "/api/v1/reports/availability/{month}/revisions/{revision}/page"},
        {"GET", "/api/v1/credit-requests/{id}/documents/{n}"},
        {"DELETE", "/api/v1/tokens/{id}"},
        {"POST", "/api/v1/jobs/{name}/run"},
        {"POST", "/api/v1/webhooks/servicenow"},
        {"GET", "/alerts/unsubscribe"},
        {"POST", "/alerts/unsubscribe"},
    };
    for (const auto& [method, pattern] : kRoutes) {
      r->add(
          Route{method, pattern, "", [](const Request&) { return Response::no_content(); }, "fuzz"},
          "fuzz");
    }
    r->close();
    return r;
  }();
  return *kRouter;
}

void check_match(const std::string& method, const std::string& path) {
  const auto segments = host::split_path(path);
  for (const auto& s : segments) expect(s.find('/') == std::string::npos, "split_path: a '/'");
  const host::RouteMatch match = router().match(method, path);
  if (match.entry != nullptr) {
    expect(match.entry->route.method == method, "Router::match: a route of another method");
    expect(match.entry->segments.size() == segments.size(), "Router::match: another length");
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const std::string& pattern = match.entry->segments[i];
      if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
        const auto it = match.params.find(pattern.substr(1, pattern.size() - 2));
        expect(it != match.params.end() && it->second == segments[i] && !it->second.empty(),
               "Router::match: a parameter is not its segment");
      } else {
        expect(pattern == segments[i], "Router::match: a literal segment differs");
      }
    }
    expect(match.allowed.empty(), "Router::match: allowed methods beside a match");
  } else {
    expect(
        std::is_sorted(match.allowed.begin(), match.allowed.end()) &&
            std::adjacent_find(match.allowed.begin(), match.allowed.end()) == match.allowed.end(),
        "Router::match: allowed methods not sorted and unique");
    expect(std::find(match.allowed.begin(), match.allowed.end(), method) == match.allowed.end(),
           "Router::match: no match, yet the method is allowed");
  }
}

}  // namespace

void check_http(std::string_view input) {
  const std::string target(input);
  Poco::URI uri;
  try {
    uri = Poco::URI(target);
  } catch (const Poco::Exception&) {
    return;  // 400: not a valid URI
  }
  Request request;
  request.path = uri.getPath();
  try {
    for (const auto& [k, v] : uri.getQueryParameters()) request.query.emplace(k, v);
  } catch (const Poco::Exception&) {
    return;  // 400: a malformed query string
  }
  for (const char* method : {"GET", "POST", "DELETE"}) check_match(method, request.path);
  (void)request.query_param("q");
  try {
    const std::int64_t limit = request.query_limit(100, 1000);
    expect(limit >= 1 && limit <= 1000, "query_limit out of range");
  } catch (const ValidationError& e) {
    check_problem(e, "query_limit");
  }
}

}  // namespace slmhub::fuzz
