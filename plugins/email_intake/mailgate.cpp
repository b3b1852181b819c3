#include "mailgate.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

namespace slmhub::email {
namespace {

constexpr int kOk = 0, kUsage = 64, kDataErr = 65, kNoInput = 66, kTempFail = 75, kNoPerm = 77;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

int mailgate_exit_status(int http_status) {
  if (http_status >= 200 && http_status < 300) return kOk;
  if (http_status == 401 || http_status == 403) return kNoPerm;
  // The server is busy, restarting or failing: the MTA keeps the message and retries.
  if (http_status == 408 || http_status == 429 || http_status >= 500) return kTempFail;
  return kDataErr;  // 400, 404 (no such queue), 413, 422: retrying cannot help
}

int run_mailgate(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                 std::ostream& err) {
  std::string url, queue, token_file, sender;
  bool has_sender = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    bool ok = true;
    if (a == "--url") {
      ok = value(url);
    } else if (a == "--queue") {
      ok = value(queue);
    } else if (a == "--token-file") {
      ok = value(token_file);
    } else if (a == "--sender") {
      ok = value(sender);
      has_sender = true;
    } else {
      err << "mailgate: unknown argument '" << a << "'\n";
      return kUsage;
    }
    if (!ok) {
      err << "mailgate: " << a << " needs a value\n";
      return kUsage;
    }
  }
  if (url.empty() || queue.empty()) {
    err << "mailgate: usage: slmhub mailgate --url URL --queue NAME [--token-file FILE] "
           "[--sender ADDRESS] < message\n";
    return kUsage;
  }
  std::string token;
  if (!token_file.empty()) {
    std::ifstream f(token_file);
    if (!f) {
      err << "mailgate: cannot read the token file " << token_file << "\n";
      return kNoInput;
    }
    std::getline(f, token);
    token = trim(token);
  } else if (const char* env = std::getenv("SLMHUB_TOKEN")) {
    token = env;
  }
  const std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (message.empty()) {
    err << "mailgate: no message on standard input\n";
    return kDataErr;
  }
  try {
    const Poco::URI base(url);
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    // HTTPS is not offered yet: Poco's default client context would fall back to asking on
    // standard input about a certificate it cannot verify, and standard input is the
    // message. Until the server speaks TLS ([hardening]), mailgate talks to a local server.
    if (base.getScheme() != "http") {
      err << "mailgate: --url must be http:// (a server on this machine), not '" << url << "'\n";
      return kUsage;
    }
    session = std::make_unique<Poco::Net::HTTPClientSession>(base.getHost(), base.getPort());
    session->setTimeout(Poco::Timespan(120, 0));
    Poco::URI target(base);
    target.setPath(base.getPath() + (base.getPath().ends_with('/') ? "" : "/") +
                   "api/v1/mail/inbound");
    target.setRawQuery("");
    target.addQueryParameter("queue", queue);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, target.getPathAndQuery(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType("message/rfc822");
    request.setContentLength(static_cast<std::streamsize>(message.size()));
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    // The envelope sender as the MTA knows it (Postfix pipe: ${sender}, empty for a bounce).
    if (has_sender) request.set("X-Envelope-From", "<" + sender + ">");
    session->sendRequest(request) << message;
    Poco::Net::HTTPResponse response;
    std::istream& body = session->receiveResponse(response);
    std::string answer;
    Poco::StreamCopier::copyToString(body, answer);
    const int status = static_cast<int>(response.getStatus());
    const int code = mailgate_exit_status(status);
    (code == kOk ? out : err) << (code == kOk ? "" : "mailgate: ") << "HTTP " << status << " "
                              << answer << "\n";
    return code;
  } catch (const Poco::Exception& e) {
    err << "mailgate: cannot reach " << url << ": " << e.displayText() << " (try later)\n";
    return kTempFail;
  }
}

}  // namespace slmhub::email
