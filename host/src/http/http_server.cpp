#include "http/http_server.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>
#include <poll.h>

#include <cerrno>

#include <algorithm>
#include <chrono>

#include "http/tls_server.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/utf8.hpp"

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
  // Details quote what the client sent (a decoded path, a query value), which may be any
  // bytes: invalid UTF-8 is written as U+FFFD rather than failing the answer.
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// What answering a request takes, owned by the HttpServer.
struct Front {
  Router& router;
  TokenStore& tokens;
  FailedAuthLimiter& failures;
  Metrics& metrics;
  Logger& log;
  const HttpLimits& limits;
};

class RootHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RootHandler(const Front& front)
      : router_(front.router),
        tokens_(front.tokens),
        failures_(front.failures),
        metrics_(front.metrics),
        log_(front.log),
        limits_(front.limits) {}

  void handleRequest(HTTPServerRequest& in, HTTPServerResponse& out) override {
    auto started = std::chrono::steady_clock::now();
    std::string route_label = "unmatched";
    Response response;
    try {
      response = dispatch(in, route_label);
    } catch (const Problem& p) {
      if (p.status() == 503) {
        // The server cannot answer now (the store busy or gone): what went wrong, which can
        // name the store's host, user and database, goes to the log; the client retries.
        log_.error(in.getMethod() + " " + in.getURI() + ": " + p.title() + ": " + p.detail());
        response = problem(p.status(), p.title(),
                           "the server cannot answer now; try again later (the cause is in its "
                           "log)",
                           in.getURI());
      } else {
        response = problem(p.status(), p.title(), p.detail(), in.getURI(), p.errors());
      }
    } catch (const std::exception& e) {
      log_.error(in.getMethod() + " " + in.getURI() + ": " + e.what());
      response = problem(500, "Internal Server Error",
                         "the server failed to answer; the error is in its log", in.getURI());
    }
    if (counts_401_ && response.status == 401) {
      log_.warning("refused the credentials of " + client_ + " (" + in.getMethod() + " " +
                   quote_text(in.getURI()) + ")");
      if (const auto wait = failures_.settle(client_, true); wait.count() > 0)
        response = too_many_failures(wait, in.getURI());
    }
    send(out, response);
    ConnectionGuard::answer_sent();
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
      close_after_answer(in);  // its body is unread: it must not be taken for the next request
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
      close_after_answer(in);
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
    // A path parameter names something, and names are text: %FF decodes to a byte that is
    // no UTF-8, which no JSON answer, audit row or event could carry.
    for (const auto& [name, value] : request.params) {
      if (!valid_utf8(value)) {
        close_after_answer(in);
        return problem(400, "Bad Request", "the path's {" + name + "} is not UTF-8 text",
                       in.getURI());
      }
    }

    // Routes that check credentials: those with a role (a token, checked here) and writes
    // without one (webhooks check their own; their 401s are counted in handleRequest).
    // Public reads (health, metrics, the status page) carry nothing to guess.
    client_ = FailedAuthLimiter::client_key(in.clientAddress().host().toString());
    counts_401_ = entry.route.role.empty() && request.method != "GET" && request.method != "HEAD";
    if (!entry.route.role.empty() || counts_401_) {
      if (const auto wait = failures_.blocked_for(client_); wait.count() > 0) {
        close_after_answer(in);
        return too_many_failures(wait, in.getURI());
      }
    }
    if (!entry.route.role.empty()) {
      auto result = tokens_.authenticate(request.header("authorization"), request.principal);
      const bool failed = result == AuthResult::invalid || result == AuthResult::expired;
      if (const auto wait = failures_.settle(client_, failed); wait.count() > 0) {
        close_after_answer(in);
        return too_many_failures(wait, in.getURI());
      }
      if (result != AuthResult::ok) {
        if (failed)
          log_.warning("refused an " +
                       std::string(result == AuthResult::expired ? "expired" : "invalid") +
                       " token from " + client_ + " (" + request.method + " " + in.getURI() + ")");
        close_after_answer(in);
        static const char* kWhy[] = {"", "this resource needs 'Authorization: Bearer <token>'",
                                     "the bearer token is not valid", "the bearer token expired"};
        auto r = problem(401, "Unauthorized", kWhy[static_cast<int>(result)], in.getURI());
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"slmhub\"");
        return r;
      }
      if (!request.principal.admitted_by(entry.route.role)) {
        close_after_answer(in);
        // "the role 'a'", "the role 'a' or 'b'", "... or a customer token".
        std::string needs;
        bool customer = false;
        const std::string& role = entry.route.role;
        for (const std::string_view part : route_role_alternatives(role)) {
          if (part == "customer") {
            customer = true;
          } else {
            needs += (needs.empty() ? "the role '" : " or '") + std::string(part) + "'";
          }
        }
        return problem(403, "Forbidden",
                       "this resource needs " + needs + (customer ? " or a customer token" : ""),
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
    // std::istream::read turns its buffer's exceptions into badbit: a broken chunk.
    if (stream.bad() && !ConnectionGuard::cut()) {
      close_ = true;
      return problem(400, "Bad Request", "the request body cannot be read (a broken chunk?)",
                     in.getURI());
    }
    if (!ConnectionGuard::handler_started()) {  // cut: the request must not be handled
      close_ = true;
      return problem(408, "Request Timeout",
                     "the request did not arrive whole within " +
                         std::to_string(limits_.request_timeout_ms) +
                         " ms (http.request_timeout_ms)",
                     in.getURI());
    }
    if (in.getChunkedTransferEncoding() && ConnectionGuard::peer_closed()) {
      close_ = true;
      return problem(400, "Bad Request",
                     "the connection closed before the chunked request body ended", in.getURI());
    }
    if (in.hasContentLength() && static_cast<std::int64_t>(body.size()) < in.getContentLength64()) {
      close_ = true;
      return problem(400, "Bad Request",
                     "the request body ended after " + std::to_string(body.size()) + " of " +
                         std::to_string(in.getContentLength64()) + " bytes (Content-Length)",
                     in.getURI());
    }
    request.body = std::move(body);
    return entry.route.handler(request);
  }

  // The answer to a client with too many failed authentications: it must not tell whether
  // the credential it sent was right.
  Response too_many_failures(FailedAuthLimiter::Clock::duration wait, const std::string& uri) {
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
    auto r = problem(429, "Too Many Requests",
                     "too many failed authentications from " + client_ + "; try again in " +
                         std::to_string(seconds) + " s",
                     uri);
    r.headers.emplace_back("Retry-After", std::to_string(seconds));
    return r;
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

  // A header value is one line: a line break a handler let through (a name or type taken from
  // an upload) would end the header and start one of the sender's choosing. Poco writes values
  // as they are.
  static std::string one_line(std::string value) {
    std::replace_if(
        value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; },
        ' ');
    return value;
  }

  void send(HTTPServerResponse& out, const Response& r) {
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    if (!r.content_type.empty()) out.setContentType(one_line(r.content_type));
    for (const auto& [k, v] : r.headers) out.set(k, one_line(v));
    if (close_) out.setKeepAlive(false);
    out.setContentLength64(static_cast<Poco::Int64>(r.body.size()));
    auto& stream = out.send();
    stream.write(r.body.data(), static_cast<std::streamsize>(r.body.size()));
    // On the wire before the connection may be closed (a stopping server closes it as soon
    // as the answer is sent): Poco would flush only when the response object goes.
    stream.flush();
  }

  Router& router_;
  TokenStore& tokens_;
  FailedAuthLimiter& failures_;
  Metrics& metrics_;
  Logger& log_;
  const HttpLimits& limits_;
  bool close_ = false;
  std::string client_;       // the failed-authentication key of the client
  bool counts_401_ = false;  // the handler checks credentials: its 401 is a failure
};

class RootFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit RootFactory(const Front& front) : front_(front) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
    return new RootHandler(front_);
  }

 private:
  const Front front_;
};

// An HTTP connection served under a deadline: the TLS handshake and each request must arrive
// within http.request_timeout_ms (ConnectionGuard). Poco's objects parse and answer each
// request (headers, chunked bodies, 100-continue); the loop between requests is this one, the
// same as Poco's HTTPServerConnection::run but for how it waits for the next request: Poco
// 1.11 creates, registers and closes an epoll set for every wait, four system calls before
// each request of a keep-alive connection, and a system call costs microseconds on a virtual
// machine. poll(2) on the one descriptor is one call, and none when the request is already
// in the session's buffer.
class GuardedConnection : public Poco::Net::TCPServerConnection {
 public:
  GuardedConnection(const Poco::Net::StreamSocket& socket, ConnectionGuard& guard,
                    Poco::Net::HTTPServerParams::Ptr params,
                    Poco::Net::HTTPRequestHandlerFactory::Ptr factory, bool tls)
      : TCPServerConnection(socket), guard_(guard), params_(params), factory_(factory), tls_(tls) {}

  void run() override {
    ConnectionGuard::Watch watch(guard_, socket().impl()->sockfd());
    // A client that stops reading cannot hold the thread while an answer is written either.
    socket().setSendTimeout(params_->getTimeout());
    Session session(socket(), params_);
    int allowed = params_->getMaxKeepAliveRequests();  // negative: no limit
    for (bool first = true; next_request(session, first, allowed); first = false) {
      try {
        serve(session);
      } catch (const Poco::Net::NoMessageException&) {
        break;  // the client closed the connection between requests
      } catch (const Poco::Net::MessageException&) {
        send_error(session, Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
      } catch (const Poco::Exception&) {
        if (session.networkException() != nullptr) session.networkException()->rethrow();
        throw;
      }
    }
  }

 private:
  // The session's buffer is Poco's to read; only its size is needed here.
  class Session : public Poco::Net::HTTPServerSession {
   public:
    using HTTPServerSession::HTTPServerSession;
    using HTTPSession::buffered;
  };

  bool next_request(Session& session, bool first, int& allowed) {
    if (!socket().impl()->initialized()) return false;
    if (!first && (allowed == 0 || !session.getKeepAlive())) return false;
    if (allowed > 0) --allowed;
    if (session.buffered() > 0) return true;
    const Poco::Timespan wait = first ? params_->getTimeout() : params_->getKeepAliveTimeout();
    // Over TLS, OpenSSL may hold decrypted bytes the descriptor no longer shows: its own poll
    // asks OpenSSL first.
    if (tls_) return socket().poll(wait, Poco::Net::Socket::SELECT_READ);
    pollfd readable{socket().impl()->sockfd(), POLLIN, 0};
    int ready = 0;
    do {
      ready = ::poll(&readable, 1, static_cast<int>(wait.totalMilliseconds()));
    } while (ready < 0 && errno == EINTR);
    return ready > 0;  // readable, closed or failed: the read that follows tells which
  }

  void serve(Session& session) {
    Poco::Net::HTTPServerResponseImpl response(session);
    Poco::Net::HTTPServerRequestImpl request(response, session, params_);
    response.setDate(Poco::Timestamp());
    response.setVersion(request.getVersion());
    response.setKeepAlive(params_->getKeepAlive() && request.getKeepAlive() &&
                          session.canKeepAlive());
    try {
      const std::unique_ptr<Poco::Net::HTTPRequestHandler> handler(
          factory_->createRequestHandler(request));
      if (!handler) {
        send_error(session, Poco::Net::HTTPResponse::HTTP_NOT_IMPLEMENTED);
        return;
      }
      if (request.getExpectContinue() && response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK)
        response.sendContinue();
      handler->handleRequest(request, response);
      session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() &&
                           session.canKeepAlive());
    } catch (const Poco::Exception&) {
      if (!response.sent()) {
        try {
          send_error(session, Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
        } catch (...) {
        }
      }
      throw;
    }
  }

  static void send_error(Session& session, Poco::Net::HTTPResponse::HTTPStatus status) {
    Poco::Net::HTTPServerResponseImpl response(session);
    response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
    response.setStatusAndReason(status);
    response.setKeepAlive(false);
    response.send();
    session.setKeepAlive(false);
  }

  ConnectionGuard& guard_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
  bool tls_;
};

class GuardedConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  GuardedConnectionFactory(ConnectionGuard& guard, Poco::Net::HTTPServerParams::Ptr params,
                           Poco::Net::HTTPRequestHandlerFactory::Ptr factory, bool tls)
      : guard_(guard), params_(params), factory_(factory), tls_(tls) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new GuardedConnection(socket, guard_, params_, factory_, tls_);
  }

 private:
  ConnectionGuard& guard_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
  bool tls_;
};

}  // namespace

HttpServer::HttpServer(Router& router, TokenStore& tokens, Metrics& metrics, Logger& log,
                       HttpLimits limits)
    : router_(router),
      tokens_(tokens),
      metrics_(metrics),
      log_(log),
      limits_(std::move(limits)),
      failures_(limits_.auth_failure_limit,
                std::chrono::seconds(limits_.auth_failure_window_seconds)) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port) {
  if (limits_.tls_cert_file.empty() != limits_.tls_key_file.empty())
    throw std::runtime_error(
        "http.tls.cert_file and http.tls.key_file go together: set both for HTTPS, or neither");
  if (!limits_.tls_cert_file.empty())
    tls_ = std::make_unique<TlsServer>(limits_.tls_cert_file, limits_.tls_key_file);
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  try {
    const Poco::Net::SocketAddress address(host, static_cast<Poco::UInt16>(port));
    if (tls_) {
      socket = std::make_unique<Poco::Net::SecureServerSocket>(tls_->context());
    } else {
      socket = std::make_unique<Poco::Net::ServerSocket>();
    }
    // SO_REUSEADDR (a restart need not wait out TIME_WAIT) without SO_REUSEPORT, which
    // Poco's bind(address, true) also sets: with it a second slmhub started on a port in use
    // bound it too, and the kernel shared the connections between the two servers.
    socket->bind(address, true, false);
    socket->listen(256);
  } catch (const Poco::Exception& e) {
    // Poco's what() is only the exception's class ("Net Exception"): say where and why.
    throw std::runtime_error(
        "cannot listen on " + host + ":" + std::to_string(port) +
        " (http.host, http.port): " + (e.message().empty() ? e.displayText() : e.message()));
  }
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(limits_.threads);
  params->setMaxQueued(limits_.max_queued);
  params->setTimeout(Poco::Timespan(static_cast<long>(limits_.request_timeout_ms) * 1000));
  params->setKeepAlive(true);
  // Idle keep-alive connections are Poco's to close, well before the request deadline would
  // cut them (and count them as slow clients).
  params->setKeepAliveTimeout(
      Poco::Timespan(static_cast<long>(std::min(10000, limits_.request_timeout_ms / 2)) * 1000));
  params->setMaxKeepAliveRequests(10000);
  params->setServerName("slmhub");
  const int bound = socket->address().port();
  guard_ = std::make_unique<ConnectionGuard>(std::chrono::milliseconds(limits_.request_timeout_ms));
  pool_ = std::make_unique<Poco::ThreadPool>(2, limits_.threads);
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers =
      new RootFactory(Front{router_, tokens_, failures_, metrics_, log_, limits_});
  server_ = std::make_unique<Poco::Net::TCPServer>(
      new GuardedConnectionFactory(*guard_, params, handlers, tls_ != nullptr), *pool_, *socket,
      params);
  server_->start();
  if (tls_) log_.info("HTTPS with " + tls_->describe());
  return bound;
}

std::string HttpServer::reload_tls() {
  if (!tls_) throw std::runtime_error("HTTPS is not configured (http.tls.cert_file)");
  return tls_->reload();
}

void HttpServer::stop() {
  if (server_) {
    server_->stop();  // no new connections
    guard_->drain();  // idle keep-alive connections close now, the others after their answer
    server_.reset();
    pool_->joinAll();
    pool_.reset();
    guard_.reset();
  }
}

}  // namespace slmhub::host
