// The HTTP front door: Poco's HTTPServer with one handler that applies the limits,
// authenticates, looks the route up in the Router, checks the role, calls the handler and
// renders every error as RFC 7807 problem+json. Nothing else in the host talks HTTP.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "http/auth.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "slmhub/log.hpp"

namespace Poco {
class ThreadPool;
namespace Net {
class HTTPServer;
}
}  // namespace Poco

namespace slmhub::host {

struct HttpLimits {
  std::int64_t max_body_bytes = 1 << 20;
  int max_header_count = 64;
  std::int64_t max_header_bytes = 16 << 10;
  int max_json_depth = 64;
  int request_timeout_ms = 30000;
  int threads = 64;
  int max_queued = 256;
};

class HttpServer {
 public:
  HttpServer(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log, HttpLimits limits);
  ~HttpServer();
  // Binds and serves; returns the port actually bound (useful with port 0).
  int start(const std::string& host, int port);
  void stop();

 private:
  Router& router_;
  TokenStore& tokens_;
  Metrics& metrics_;
  Logger& log_;
  HttpLimits limits_;
  std::unique_ptr<Poco::ThreadPool> pool_;  // outlives server_: its threads run the handlers
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

// The problem+json body of DESIGN.md §5.2.
std::string problem_json(int status, const std::string& title, const std::string& detail,
                         const std::string& instance, const std::vector<FieldError>& errors);

}  // namespace slmhub::host
