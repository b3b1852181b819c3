// The HTTP edge under hostile or careless clients, against the real `slmhub` process: HTTPS
// (TLS 1.2 or later, a certificate reloaded on SIGHUP), clients that send slowly (slow-loris),
// too many or too large headers, deep JSON, a 1 GB upload, and a client that guesses tokens.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "certificate.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A TCP client that misbehaves on purpose: it writes what it is told, when it is told.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // False once the server has closed the connection.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Closes the sending side: the server reads end of file, and can still answer.
  void finish_sending() { ::shutdown(fd_, SHUT_WR); }
  // What the server sent until it closed the connection, or nothing if it is still open
  // after `wait`.
  std::optional<std::string> until_closed(std::chrono::milliseconds wait) {
    std::string got;
    const auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return got;
      got.append(buffer, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
};

// A process's peak (VmHWM) or current (VmRSS) resident set, in KiB.
std::int64_t status_kib(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field)) return std::stoll(line.substr(field.size()));
  }
  return -1;
}

// The SHA-256 fingerprint of what the server presents, or of a certificate file.
std::string served_fingerprint(int port) {
  return run_shell("openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                   " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256")
      .second;
}
std::string file_fingerprint(const fs::path& certificate) {
  return run_shell("openssl x509 -noout -fingerprint -sha256 -in '" + certificate.string() + "'")
      .second;
}

TEST(Https, ServesTls12OrLaterAndReadsARenewedCertificateOnSighup) {
  TempDir dir;
  const Certificate first = make_self_signed_certificate(dir.path() / "first", "127.0.0.1");
  const Certificate second = make_self_signed_certificate(dir.path() / "second", "127.0.0.1");
  const fs::path cert = dir.path() / "server.crt", key = dir.path() / "server.key";
  fs::copy_file(first.certificate, cert);
  fs::copy_file(first.key, key);
  ServerProcess server(dir.path(), {{"SLMHUB_HTTP_TLS_CERT_FILE", cert.string()},
                                    {"SLMHUB_HTTP_TLS_KEY_FILE", key.string()}});
  server.start();
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/readyz";
  auto get = [&](const fs::path& ca) {
    return run_shell("curl -sS -o /dev/null -w '%{http_code}' --cacert '" + ca.string() + "' " +
                     url);
  };
  EXPECT_EQ(get(first.certificate), std::make_pair(0, std::string("200")));
  // Plain HTTP on the TLS port gets no answer.
  EXPECT_THROW(http(server.port(), "GET", "/readyz"), std::exception);
  // TLS 1.1 is refused by the server (the client is told to allow it: OpenSSL's own default
  // would refuse it first); TLS 1.2 and 1.3 are served.
  const std::string connect =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(server.port()) + " </dev/null ";
  // The server's own refusal: an alert, not a client that cannot speak TLS 1.1.
  const auto old_protocol = run_shell(connect + "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'");
  EXPECT_NE(old_protocol.first, 0);
  EXPECT_NE(old_protocol.second.find("alert protocol version"), std::string::npos)
      << old_protocol.second;
  EXPECT_EQ(run_shell(connect + "-tls1_2").first, 0);
  EXPECT_EQ(run_shell(connect + "-tls1_3").first, 0);

  // A renewed certificate: the files replaced, then SIGHUP; new connections get it.
  EXPECT_EQ(served_fingerprint(server.port()), file_fingerprint(first.certificate));
  fs::copy_file(second.certificate, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(second.key, key, fs::copy_options::overwrite_existing);
  server.signal(SIGHUP);
  for (int i = 0; i < 100 && server.log().find("SIGHUP: now serving") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(served_fingerprint(server.port()), file_fingerprint(second.certificate))
      << server.log();
  EXPECT_EQ(get(second.certificate), std::make_pair(0, std::string("200")));

  // A broken key: the reload is refused, said in the log, and the certificate in service stays.
  std::ofstream(key, std::ios::trunc) << "not a key\n";
  server.signal(SIGHUP);
  for (int i = 0; i < 100 && server.log().find("was not reloaded") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(server.log().find("holds no unencrypted PEM private key"), std::string::npos)
      << server.log();
  EXPECT_EQ(get(second.certificate), std::make_pair(0, std::string("200")));
}

TEST(Https, ACertificateThatCannotBeUsedStopsTheStartWithTheReason) {
  TempDir dir;
  const Certificate one = make_self_signed_certificate(dir.path() / "one", "127.0.0.1");
  const Certificate other = make_self_signed_certificate(dir.path() / "other", "127.0.0.1");
  ServerProcess server(dir.path(), {{"SLMHUB_HTTP_TLS_CERT_FILE", one.certificate.string()},
                                    {"SLMHUB_HTTP_TLS_KEY_FILE", other.key.string()}});
  try {
    server.start();
    ADD_FAILURE() << "started with a key that is not the certificate's";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("is not the key of the certificate"), std::string::npos)
        << e.what();
  }
}

// Clients that send a request a byte at a time hold a server thread each; the request deadline
// (http.request_timeout_ms, here 1 s) frees them, and a well-behaved client is served meanwhile
// although the slow ones outnumber the threads.
TEST(SlowClients, AreCutAtTheRequestDeadlineAndOthersAreServedMeanwhile) {
  TempDir dir;
  ServerProcess server(dir.path(),
                       {{"SLMHUB_HTTP_REQUEST_TIMEOUT_MS", "1000"}, {"SLMHUB_HTTP_THREADS", "4"}});
  server.start();
  constexpr int kSlow = 12;
  std::atomic<int> cut{0};
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&] {
      RawClient client(server.port());
      client.send("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      // One header byte every 100 ms, far inside any per-read time-out, for up to 20 s.
      for (int tick = 0; tick < 200; ++tick) {
        if (!client.send("X") || client.until_closed(100ms)) {
          ++cut;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  const auto served = http(server.port(), "GET", "/readyz");
  EXPECT_EQ(served.status, 200);
  for (auto& t : slow) t.join();
  EXPECT_EQ(cut.load(), kSlow);
  const auto metrics = http(server.port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("slmhub_http_slow_clients_cut_total " + std::to_string(kSlow)),
            std::string::npos)
      << metrics.body;
}

// A body sent a byte every 200 ms (each read well inside the socket time-out) is cut at the
// request deadline and never handled.
TEST(SlowClients, ABodyThatTricklesIsCutAndNeverHandled) {
  TempDir dir;
  ServerProcess server(dir.path(), {{"SLMHUB_HTTP_REQUEST_TIMEOUT_MS", "1000"}});
  server.start();
  const std::string body =
      R"({"id":"oracle-prod","name":"Oracle","environment":"production","hours":"24x7",)"
      R"("target_percent":99.75})";
  RawClient client(server.port());
  ASSERT_TRUE(
      client.send("POST /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                  "Bearer " +
                  server.admin_token() + "\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n"));
  std::optional<std::string> answer;
  std::size_t sent = 0;
  for (; sent < body.size() && !answer; ++sent) {
    if (!client.send(body.substr(sent, 1))) break;
    answer = client.until_closed(200ms);
  }
  if (!answer) answer = client.until_closed(5s);
  ASSERT_TRUE(answer.has_value()) << "the connection stayed open";
  EXPECT_LT(sent, body.size()) << "the whole body got through";
  if (!answer->empty()) {
    EXPECT_TRUE(answer->starts_with("HTTP/1.1 408")) << *answer;
  }
  EXPECT_EQ(
      http(server.port(), "GET", "/api/v1/services/oracle-prod", "", server.admin_token()).status,
      404);
}

TEST(Limits, TooManyOrTooLargeHeadersAreRefused) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  std::map<std::string, std::string> many;
  for (int i = 0; i < 70; ++i) many["X-Field-" + std::to_string(i)] = "1";
  const auto count = http(server.port(), "GET", "/readyz", "", "", many);
  EXPECT_EQ(count.status, 431) << count.body;
  EXPECT_NE(count.body.find("at most 64 header fields"), std::string::npos) << count.body;
  std::map<std::string, std::string> large;
  for (int i = 0; i < 4; ++i) large["X-Large-" + std::to_string(i)] = std::string(5000, 'a');
  EXPECT_EQ(http(server.port(), "GET", "/readyz", "", "", large).status, 431);
  // One line longer than any field may be: refused while the headers are read. The refusal
  // may be lost to a reset when the server closes before the client has sent the rest.
  RawClient huge(server.port());
  huge.send("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: " + std::string(100000, 'a') +
            "\r\n\r\n");
  const auto answer = huge.until_closed(10s);
  ASSERT_TRUE(answer.has_value()) << "the connection stayed open";
  if (!answer->empty()) {
    EXPECT_TRUE(answer->starts_with("HTTP/1.1 400")) << *answer;
  }
  EXPECT_EQ(http(server.port(), "GET", "/readyz").status, 200);
}

TEST(Limits, JsonNestedTooDeeplyIs400NamingTheLimit) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto r = http(server.port(), "POST", "/api/v1/services", deep, server.admin_token(),
                      {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("deeper than 64"), std::string::npos) << r.body;
}

// A 1 GB upload, declared or chunked, is refused after at most http.max_body_bytes (1 MiB) and
// a bounded drain; the server never holds it.
TEST(Limits, AGigabyteUploadIsRefusedEarlyWithBoundedMemory) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  // What the uploads add is measured, not what the server holds from its start (its SQLite
  // page-buffer region alone is 40 MiB, and a sanitized build holds much more).
  const std::int64_t before = status_kib(server.pid(), "VmRSS:");
  const std::string chunk(1 << 20, 'x');
  constexpr std::int64_t kGigabyte = std::int64_t{1} << 30;
  for (const bool chunked : {false, true}) {
    RawClient client(server.port());
    std::string head =
        "POST /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
        server.admin_token() + "\r\nContent-Type: application/json\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                    : "Content-Length: " + std::to_string(kGigabyte) + "\r\n\r\n";
    ASSERT_TRUE(client.send(head));
    std::int64_t sent = 0;
    std::string piece = chunk;
    if (chunked) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
      piece = size + chunk + "\r\n";
    }
    while (sent < kGigabyte && client.send(piece)) sent += static_cast<std::int64_t>(chunk.size());
    EXPECT_LT(sent, kGigabyte / 4) << (chunked ? "chunked" : "declared") << ": all of it was read";
    const auto answer = client.until_closed(10s);
    ASSERT_TRUE(answer.has_value());
    // The refusal reaches the client unless the unread rest reset the connection first.
    if (!answer->empty()) {
      EXPECT_NE(answer->find(" 413 "), std::string::npos) << *answer;
    }
  }
  const std::int64_t peak = status_kib(server.pid(), "VmHWM:");
  EXPECT_GT(before, 0);
  EXPECT_LT(peak - before, 64 * 1024) << "peak RSS " << peak << " KiB, " << before << " KiB before";
  EXPECT_EQ(http(server.port(), "GET", "/api/v1/services", "", server.admin_token()).body,
            R"({"services":[]})");
}

// A request refused for its target (a malformed query string, an invalid URI) has a body the
// server never read: the connection is closed after the 400, so that body is never taken for
// the next request (which, behind a proxy that reuses connections, another client would be
// answered with).
TEST(Limits, ARequestRefusedForItsTargetClosesTheConnection) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  const std::string inner = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (const std::string target : {"/api/v1/services?x=%zz", "/api/v1/services%"}) {
    RawClient client(server.port());
    ASSERT_TRUE(client.send("POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " +
                            "Bearer " + server.admin_token() + "\r\nContent-Length: " +
                            std::to_string(inner.size()) + "\r\n\r\n" + inner));
    const auto answer = client.until_closed(10s);
    ASSERT_TRUE(answer.has_value()) << target << ": the connection was kept open";
    EXPECT_TRUE(answer->starts_with("HTTP/1.1 400 ")) << *answer;
    EXPECT_EQ(answer->find("HTTP/1.1", 1), std::string::npos) << target << ": " << *answer;
  }
}

// A body cut short by the client closing the connection is refused, never handled as if it were
// whole, even when what arrived is a valid request on its own.
TEST(Limits, ABodyCutShortByTheClientClosingIsRefused) {
  TempDir dir;
  ServerProcess server(dir.path());
  server.start();
  const std::string whole = R"({"id":"web","name":"Web hosting","environment":"production",)"
                            R"("hours":"24x7","target_percent":99.75})";
  for (const bool chunked : {false, true}) {
    RawClient client(server.port());
    std::string request =
        "POST /api/v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
        server.admin_token() + "\r\nContent-Type: application/json\r\n";
    if (chunked) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", whole.size());
      // One whole chunk, then no last chunk ("0"): the body may go on.
      request += "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + whole + "\r\n";
    } else {
      request += "Content-Length: " + std::to_string(whole.size() + 10) + "\r\n\r\n" + whole;
    }
    ASSERT_TRUE(client.send(request));
    client.finish_sending();
    const auto answer = client.until_closed(10s);
    ASSERT_TRUE(answer.has_value()) << (chunked ? "chunked" : "declared");
    EXPECT_NE(answer->find(" 400 "), std::string::npos) << *answer;
  }
  EXPECT_EQ(http(server.port(), "GET", "/api/v1/services", "", server.admin_token()).body,
            R"({"services":[]})");
  // The same body, whole, is a service.
  EXPECT_EQ(http(server.port(), "POST", "/api/v1/services", whole, server.admin_token()).status,
            201);
}

// A client that keeps presenting invalid tokens is made to wait (429 with Retry-After), so a
// token cannot be guessed at speed; a request without a token is not a failure.
TEST(FailedAuthentication, InvalidTokensFromOneAddressAreThrottled) {
  TempDir dir;
  ServerProcess server(dir.path(), {{"SLMHUB_AUTH_MAX_FAILURES", "3"}});
  server.start();
  const std::string guess = "slm_0123456789ab_notthesecretnotthesecretnotthesecret";
  EXPECT_EQ(http(server.port(), "GET", "/api/v1/services").status, 401);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(http(server.port(), "GET", "/api/v1/services", "", guess).status, 401);
  const auto throttled = http(server.port(), "GET", "/api/v1/services", "", guess);
  EXPECT_EQ(throttled.status, 429) << throttled.body;
  ASSERT_TRUE(throttled.headers.count("Retry-After")) << throttled.body;
  const int wait = std::stoi(throttled.headers.at("Retry-After"));
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
  // The address waits, whatever token it now presents; routes without one stay open.
  EXPECT_EQ(http(server.port(), "GET", "/api/v1/services", "", server.admin_token()).status, 429);
  EXPECT_EQ(http(server.port(), "GET", "/readyz").status, 200);
  EXPECT_NE(server.log().find("refused an invalid token from 127.0.0.1"), std::string::npos)
      << server.log();
}

}  // namespace
}  // namespace slmhub::test
