#include "http/http_server.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <chrono>

#include "slmhub/errors.hpp"

namespace slmhub::host {

std::string problem_json(int status, const std::string& title, const std::string& detail,
                         const std::string& instance, const std::vector<FieldError>& errors) {
  Json body = {{"type", "about:blank"},
               {"title", title},
               {"status", status},
               {"detail", detail},
               {"instance", instance}};
  if (!errors.empty()) {
    Json list = Json::array();
    for (const auto& e : errors) list.push_back({{"path", e.path}, {"message", e.message}});
    body["errors"] = std::move(list);
  }
  return body.dump();
}

namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

class RootHandler : public Poco::Net::HTTPRequestHandler {
 public:
  RootHandler(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log,
              const HttpLimits& limits)
      : router_(router), tokens_(tokens), metrics_(metrics), log_(log), limits_(limits) {}

  void handleRequest(HTTPServerRequest& in, HTTPServerResponse& out) override {
    auto started = std::chrono::steady_clock::now();
    std::string route_label = "unmatched";
    Response response;
    try {
      response = dispatch(in, route_label);
    } catch (const Problem& p) {
      response = problem(p.status(), p.title(), p.detail(), in.getURI(), p.errors());
    } catch (const std::exception& e) {
      log_.error(in.getMethod() + " " + in.getURI() + ": " + e.what());
      response = problem(500, "Internal Server Error",
                         "the server failed to answer; the error is in its log", in.getURI());
    }
    send(out, response);
    if (close_) drain_unread(in);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
    metrics_.observe_request(in.getMethod(), route_label, response.status, micros);
  }

 private:
  static Response problem(int status, const std::string& title, const std::string& detail,
                          const std::string& instance, const std::vector<FieldError>& errors = {}) {
    Response r = Response::text(problem_json(status, title, detail, instance, errors),
                                "application/problem+json", status);
    return r;
  }

  Response dispatch(HTTPServerRequest& in, std::string& route_label) {
    // Header limits. Poco itself refuses more than 100 fields or over-long lines before we
    // see the request; these are the configurable, usually tighter, bounds.
    std::int64_t header_bytes = 0;
    int header_count = 0;
    for (const auto& [name, value] : in) {
      ++header_count;
      header_bytes += static_cast<std::int64_t>(name.size() + value.size() + 4);
    }
    if (header_count > limits_.max_header_count || header_bytes > limits_.max_header_bytes) {
      close_after_answer(in);
      return problem(431, "Request Header Fields Too Large",
                     "at most " + std::to_string(limits_.max_header_count) + " header fields and " +
                         std::to_string(limits_.max_header_bytes) + " bytes of headers",
                     in.getURI());
    }

    Poco::URI uri;
    try {
      uri = Poco::URI(in.getURI());
    } catch (const Poco::Exception& e) {
      return problem(400, "Bad Request", "the request target is not a valid URI: " + e.message(),
                     in.getURI());
    }
    Request request;
    request.method = in.getMethod();
    request.path = uri.getPath();
    request.max_json_depth = limits_.max_json_depth;
    try {
      for (const auto& [k, v] : uri.getQueryParameters()) request.query.emplace(k, v);
    } catch (const Poco::Exception& e) {
      return problem(400, "Bad Request", "the query string is malformed: " + e.message(),
                     in.getURI());
    }
    for (const auto& [name, value] : in) {
      std::string lower;
      for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers[lower] = value;
    }

    auto match = router_.match(request.method, request.path);
    if (!match.entry) {
      close_after_answer(in);
      if (!match.allowed.empty()) {
        std::string allow;
        for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
        auto r = problem(
            405, "Method Not Allowed",
            request.method + " is not allowed on " + request.path + " (allowed: " + allow + ")",
            in.getURI());
        r.headers.emplace_back("Allow", allow);
        return r;
      }
      return problem(404, "Not Found", "no resource at " + request.path, in.getURI());
    }
    const RouteEntry& entry = *match.entry;
    route_label = entry.route.pattern;
    request.params = std::move(match.params);

    if (!entry.route.role.empty()) {
      auto result = tokens_.authenticate(request.header("authorization"), request.principal);
      if (result != AuthResult::ok) {
        close_after_answer(in);
        static const char* kWhy[] = {"", "this resource needs 'Authorization: Bearer <token>'",
                                     "the bearer token is not valid", "the bearer token expired"};
        auto r = problem(401, "Unauthorized", kWhy[static_cast<int>(result)], in.getURI());
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slmhub\"");
        return r;
      }
      // "customer" routes are open to staff and to customer tokens, which the handler
      // then limits to their own records.
      bool allowed = entry.route.role == "customer" ? !request.principal.roles.empty()
                                                    : request.principal.has_role(entry.route.role);
      if (!allowed) {
        close_after_answer(in);
        return problem(403, "Forbidden", "this resource needs the role '" + entry.route.role + "'",
                       in.getURI());
      }
    } else {
      request.principal.id = "anonymous";
    }

    // Body: refuse early on a declared length over the limit, and stop reading a chunked
    // body as soon as it passes the limit, so a 1 GB upload costs no memory.
    if (in.hasContentLength() && in.getContentLength64() > limits_.max_body_bytes) {
      close_after_answer(in);
      return too_large(in);
    }
    auto& stream = in.stream();
    std::string body;
    char buffer[16384];
    // Without Content-Length or chunked encoding a request has no body (RFC 9112 §6.3): reading
    // one would wait for the client to close (`curl -X POST` without data waited 30 s).
    const bool has_body = in.hasContentLength() || in.getChunkedTransferEncoding();
    while (has_body && stream) {
      stream.read(buffer, sizeof buffer);
      body.append(buffer, static_cast<std::size_t>(stream.gcount()));
      if (static_cast<std::int64_t>(body.size()) > limits_.max_body_bytes) {
        close_after_answer(in);
        return too_large(in);
      }
    }
    request.body = std::move(body);
    return entry.route.handler(request);
  }

  Response too_large(HTTPServerRequest& in) {
    return problem(413, "Content Too Large",
                   "the request body is larger than " + std::to_string(limits_.max_body_bytes) +
                       " bytes (http.max_body_bytes)",
                   in.getURI());
  }

  // A refused request's body is not read: the connection is closed after the answer so the
  // unread bytes are never parsed as the next request.
  void close_after_answer(HTTPServerRequest& in) {
    close_ = in.hasContentLength() || in.getChunkedTransferEncoding();
  }

  // After refusing a request whose body was not read, reads (and drops) what the client is
  // still sending, for a bounded time and amount, before the connection closes: closing a
  // socket with unread data makes the kernel reset the connection, and a reset destroys the
  // refusal in the client's receive buffer before it reads it (curl then reports only the
  // "100 Continue" Poco sent first). Beyond the bounds the reset is accepted.
  static void drain_unread(HTTPServerRequest& in) {
    constexpr std::int64_t kMaxBytes = 16 << 20;
    constexpr auto kMaxTime = std::chrono::seconds(2);
    const auto until = std::chrono::steady_clock::now() + kMaxTime;
    try {
      auto& stream = in.stream();
      char buffer[16384];
      std::int64_t read = 0;
      while (stream && read < kMaxBytes && std::chrono::steady_clock::now() < until) {
        stream.read(buffer, sizeof buffer);
        read += stream.gcount();
        if (stream.gcount() == 0) break;
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): the answer is sent; this is courtesy
    }
  }

  void send(HTTPServerResponse& out, const Response& r) {
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    if (!r.content_type.empty()) out.setContentType(r.content_type);
    for (const auto& [k, v] : r.headers) out.set(k, v);
    if (close_) out.setKeepAlive(false);
    out.setContentLength64(static_cast<Poco::Int64>(r.body.size()));
    auto& stream = out.send();
    stream.write(r.body.data(), static_cast<std::streamsize>(r.body.size()));
  }

  Router& router_;
  TokenStore& tokens_;
  Metrics& metrics_;
  Logger& log_;
  const HttpLimits& limits_;
  bool close_ = false;
};

class RootFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  RootFactory(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log,
              const HttpLimits& limits)
      : router_(router), tokens_(tokens), metrics_(metrics), log_(log), limits_(limits) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
    return new RootHandler(router_, tokens_, metrics_, log_, limits_);
  }

 private:
  Router& router_;
  TokenStore& tokens_;
  Metrics& metrics_;
  Logger& log_;
  const HttpLimits& limits_;
};

}  // namespace

HttpServer::HttpServer(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log,
                       HttpLimits limits)
    : router_(router), tokens_(tokens), metrics_(metrics), log_(log), limits_(limits) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)),
                                 256);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(limits_.threads);
  params->setMaxQueued(limits_.max_queued);
  params->setTimeout(Poco::Timespan(static_cast<long>(limits_.request_timeout_ms) * 1000));
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(10000);
  params->setServerName("slmhub");
  int bound = socket.address().port();
  pool_ = std::make_unique<Poco::ThreadPool>(2, limits_.threads);
  server_ = std::make_unique<Poco::Net::HTTPServer>(
      new RootFactory(router_, tokens_, metrics_, log_, limits_), *pool_, socket, params);
  server_->start();
  return bound;
}

void HttpServer::stop() {
  if (server_) {
    server_->stopAll(true);
    server_.reset();
    pool_->joinAll();
    pool_.reset();
  }
}

}  // namespace slmhub::host
