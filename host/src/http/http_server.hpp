// The HTTP front door: Poco's HTTP server connection on a TCP server of our own (plain or TLS,
// every connection under a ConnectionGuard deadline), with one handler that applies the
// limits, authenticates (refusing clients that keep failing), looks the route up in the
// Router, checks the role, calls the handler and renders every error as RFC 7807
// problem+json. Nothing else in the host talks HTTP.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "http/auth.hpp"
#include "http/connection_guard.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "slmhub/log.hpp"

namespace Poco {
class ThreadPool;
namespace Net {
class TCPServer;
}
}  // namespace Poco

namespace slmhub::host {

struct HttpLimits {
  std::int64_t max_body_bytes = 1 << 20;
  int max_header_count = 64;
  std::int64_t max_header_bytes = 16 << 10;
  int max_json_depth = 64;
  int request_timeout_ms = 30000;  // for each request to arrive whole, and each socket read
  int threads = 64;
  int max_queued = 256;
  int auth_failure_limit = 10;  // invalid tokens per client and window before 429; 0: no limit
  int auth_failure_window_seconds = 60;
  std::string tls_cert_file, tls_key_file;  // both empty: plain HTTP
};

class TlsServer;

class HttpServer {
 public:
  HttpServer(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log, HttpLimits limits);
  ~HttpServer();
  // Binds and serves; returns the port actually bound (useful with port 0). Throws
  // std::runtime_error when the TLS certificate or key cannot be used.
  int start(const std::string& host, int port);
  void stop();
  bool tls() const { return tls_ != nullptr; }
  // Reads the TLS certificate and key again (SIGHUP); returns what is served now. Throws, and
  // keeps serving the pair it had, when the files cannot be used.
  std::string reload_tls();
  // Connections cut by the request deadline since start.
  std::int64_t slow_clients_cut() const { return guard_ ? guard_->cuts() : 0; }

 private:
  Router& router_;
  TokenStore& tokens_;
  Metrics& metrics_;
  Logger& log_;
  HttpLimits limits_;
  FailedAuthLimiter failures_;
  std::unique_ptr<TlsServer> tls_;
  std::unique_ptr<ConnectionGuard> guard_;  // outlives server_: connections hold watches
  std::unique_ptr<Poco::ThreadPool> pool_;  // outlives server_: its threads run the handlers
  std::unique_ptr<Poco::Net::TCPServer> server_;
};

// The problem+json body of DESIGN.md §5.2.
std::string problem_json(int status, const std::string& title, const std::string& detail,
                         const std::string& instance, const std::vector<FieldError>& errors);

}  // namespace slmhub::host
