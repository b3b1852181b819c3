#include "lmtp.hpp"

#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>
#include <Poco/Thread.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <stdexcept>

#include "text.hpp"

namespace slmhub::mail {
namespace {

// The path inside "FROM:<a@b> SIZE=10" / "TO:<a@b>": "" for <>; nullopt when malformed.
std::optional<std::string> path_argument(const std::string& rest, const char* keyword) {
  const std::string head = keyword;
  if (upper(rest.substr(0, head.size())) != head) return std::nullopt;
  std::string tail = rest.substr(head.size());
  tail.erase(0, tail.find_first_not_of(' '));
  if (tail.empty() || tail.front() != '<') return std::nullopt;
  const auto close = tail.find('>');
  if (close == std::string::npos) return std::nullopt;
  return tail.substr(1, close - 1);
}

// The sessions open now, so that stop() can end their reads instead of waiting for idle
// clients to time out.
struct Sessions {
  std::mutex mutex;
  std::set<Poco::Net::StreamSocket*> sockets;
  bool stopping = false;
};

std::string reply_line(const LmtpReply& r) {
  return std::to_string(r.code) + " " + r.enhanced + " " + r.text + "\r\n";
}

// One LMTP session. Reads lines with a buffer of its own so that pipelined commands
// (RFC 2920, which LMTP clients use) are served in order.
class Session : public Poco::Net::TCPServerConnection {
 public:
  Session(const Poco::Net::StreamSocket& socket, const LmtpSettings& settings,
          const LmtpHandlers& handlers, Logger& log, Sessions& sessions)
      : TCPServerConnection(socket),
        settings_(settings),
        handlers_(handlers),
        log_(log),
        sessions_(sessions) {}

  void run() override {
    auto& sock = socket();
    {
      std::lock_guard lock(sessions_.mutex);
      if (sessions_.stopping) return;
      sessions_.sockets.insert(&sock);
    }
    struct Leave {
      Sessions& s;
      Poco::Net::StreamSocket* sock;
      ~Leave() {
        std::lock_guard lock(s.mutex);
        s.sockets.erase(sock);
      }
    } leave{sessions_, &sock};
    sock.setReceiveTimeout(Poco::Timespan(0, settings_.idle_timeout_ms * 1000));
    sock.setSendTimeout(Poco::Timespan(0, settings_.idle_timeout_ms * 1000));
    try {
      send("220 " + settings_.hostname + " LMTP slmhub ready\r\n");
      serve();
      flush();
    } catch (const Poco::TimeoutException&) {
      send_quietly("421 4.4.2 " + settings_.hostname + " idle too long, closing\r\n");
    } catch (const Poco::Exception& e) {
      log_.warning(std::string("LMTP session ended: ") + e.displayText());
    } catch (const std::exception& e) {
      log_.warning(std::string("LMTP session ended: ") + e.what());
    }
  }

 private:
  void serve() {
    std::string line;
    while (read_line(line)) {
      const auto space = line.find(' ');
      const std::string verb = upper(line.substr(0, space));
      const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
      if (verb == "LHLO") {
        reset();
        greeted_ = true;
        send("250-" + settings_.hostname + "\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n" +
             "250-8BITMIME\r\n250 SIZE " + std::to_string(settings_.max_message_bytes) + "\r\n");
      } else if (verb == "HELO" || verb == "EHLO") {
        send("500 5.5.1 this is an LMTP server: say LHLO (RFC 2033)\r\n");
      } else if (verb == "MAIL") {
        mail_from(rest);
      } else if (verb == "RCPT") {
        rcpt_to(rest);
      } else if (verb == "DATA") {
        data();
      } else if (verb == "RSET") {
        reset();
        send("250 2.0.0 OK\r\n");
      } else if (verb == "NOOP") {
        send("250 2.0.0 OK\r\n");
      } else if (verb == "VRFY") {
        send("252 2.5.0 cannot verify, but will accept and attempt delivery\r\n");
      } else if (verb == "QUIT") {
        send("221 2.0.0 " + settings_.hostname + " closing\r\n");
        return;
      } else {
        send("500 5.5.2 command not recognized\r\n");
      }
    }
  }

  void mail_from(const std::string& rest) {
    if (!greeted_) return send("503 5.5.1 LHLO first\r\n");
    if (envelope_) return send("503 5.5.1 MAIL already given\r\n");
    auto path = path_argument(rest, "FROM:");
    if (!path) return send("501 5.5.4 syntax: MAIL FROM:<address>\r\n");
    // A declared SIZE (RFC 1870) over the limit is refused before any data is sent; one
    // within it sizes the buffer, so a large message is not copied as it grows.
    std::size_t declared = 0;
    const auto size_at = upper(rest).find("SIZE=");
    if (size_at != std::string::npos) {
      const std::string digits = rest.substr(size_at + 5, rest.find(' ', size_at) - size_at - 5);
      if (!digits.empty() && digits.size() < 19 &&
          std::all_of(digits.begin(), digits.end(),
                      [](unsigned char c) { return std::isdigit(c); })) {
        const auto size = std::stoull(digits);
        if (size > settings_.max_message_bytes) {
          return send("552 5.3.4 message larger than " +
                      std::to_string(settings_.max_message_bytes) + " bytes\r\n");
        }
        declared = static_cast<std::size_t>(size);
      }
    }
    envelope_ = Envelope{*path, {}};
    declared_size_ = declared;
    send("250 2.1.0 OK\r\n");
  }

  void rcpt_to(const std::string& rest) {
    if (!envelope_) return send("503 5.5.1 MAIL first\r\n");
    auto path = path_argument(rest, "TO:");
    if (!path || path->empty()) return send("501 5.5.4 syntax: RCPT TO:<address>\r\n");
    if (handlers_.check_recipient) {
      std::optional<LmtpReply> refused;
      try {
        refused = handlers_.check_recipient(*path);
      } catch (const std::exception& e) {
        refused = LmtpReply{451, "4.3.0", std::string("temporary failure: ") + e.what()};
      }
      if (refused) return send(reply_line(*refused));
    }
    envelope_->recipients.push_back(*path);
    send("250 2.1.5 OK\r\n");
  }

  void data() {
    if (!envelope_ || envelope_->recipients.empty()) {
      return send("503 5.5.1 no valid recipients\r\n");
    }
    send("354 2.0.0 end data with <CR><LF>.<CR><LF>\r\n");
    std::string message;
    // Dot-stuffing only shrinks what was declared. Reserved, not touched: a client that
    // declares more than it sends costs address space, not memory.
    message.reserve(declared_size_);
    bool too_large = false;
    // The client went away before the final ".": nothing was acknowledged.
    if (!read_message(message, too_large)) return;
    std::vector<LmtpReply> replies;
    if (too_large) {
      replies.assign(
          envelope_->recipients.size(),
          {552, "5.3.4",
           "message larger than " + std::to_string(settings_.max_message_bytes) + " bytes"});
    } else {
      const std::size_t size = message.size();
      try {
        replies = handlers_.deliver(*envelope_, std::move(message));
      } catch (const std::exception& e) {
        // Which message, so that an operator can match the MTA's retries to this line.
        std::string to;
        for (const auto& r : envelope_->recipients) to += (to.empty() ? "<" : ", <") + r + ">";
        log_.error("LMTP delivery from <" + envelope_->mail_from + "> to " + to + " (" +
                   std::to_string(size) + " bytes) failed, the MTA will retry: " + e.what());
        replies.clear();
      }
      if (replies.size() != envelope_->recipients.size()) {
        replies.assign(envelope_->recipients.size(),
                       {451, "4.3.0", "temporary failure, try again later"});
      }
    }
    std::string out;
    for (const auto& r : replies) out += reply_line(r);
    reset();
    send(out);
  }

  void reset() {
    envelope_.reset();
    declared_size_ = 0;
  }

  // The next complete line in the buffer without its CRLF (a bare LF ends a line too);
  // false when the buffer holds no complete line. Lines are taken by moving the start, not
  // by erasing: erasing each line from the front copied the rest of a large message once
  // per line.
  bool next_line(std::string_view& line) {
    const auto lf = buffer_.find('\n', scanned_);
    if (lf == std::string::npos) {
      scanned_ = buffer_.size();
      return false;
    }
    std::size_t end = lf;
    if (end > start_ && buffer_[end - 1] == '\r') --end;
    line = std::string_view(buffer_).substr(start_, end - start_);
    start_ = scanned_ = lf + 1;
    return true;
  }

  // Reads more from the client, first sending the replies it is waiting for. False at end
  // of stream. A line longer than `line_limit_` is cut, not stored whole: memory stays
  // bounded.
  bool fill() {
    flush();
    // Only now drop what was consumed, once per read from the socket.
    buffer_.erase(0, start_);
    start_ = 0;
    scanned_ = buffer_.size();
    if (buffer_.size() > line_limit_) {  // keep the start, drop the middle of a huge line
      buffer_.resize(line_limit_);
      scanned_ = line_limit_;
    }
    char chunk[65536];
    const int n = socket().receiveBytes(chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  // One command line. False at end of stream.
  bool read_line(std::string& line) {
    std::string_view view;
    while (!next_line(view)) {
      if (!fill()) return false;
    }
    line.assign(view.substr(0, kMaxLine));
    return true;
  }

  // The message after DATA's 354 up to the line ".", dot-unstuffed, each line ending in
  // CRLF, appended to `message` while it stays within the size limit (`too_large` says
  // when it did not). False when the client went away first.
  bool read_message(std::string& message, bool& too_large) {
    // A message line is kept whole up to the message limit (RFC 5321's 1000 octets is not
    // what every client keeps to: unwrapped base64 from a script). A longer one is cut, and
    // then longer than the limit: the message is refused, never acknowledged without the
    // bytes cut from it.
    line_limit_ = std::max(kMaxLine, settings_.max_message_bytes + 1);
    struct Restore {
      std::size_t& limit;
      ~Restore() { limit = kMaxLine; }
    } restore{line_limit_};
    for (;;) {
      std::string_view line;
      while (next_line(line)) {
        if (line == ".") return true;
        if (!line.empty() && line.front() == '.') line.remove_prefix(1);  // dot-unstuffing
        if (message.size() + line.size() + 2 > settings_.max_message_bytes) too_large = true;
        if (!too_large) {
          message.append(line);
          message.append("\r\n");
        }
      }
      if (!fill()) return false;
    }
  }

  // Replies wait until the session is about to read again: a pipelining client (RFC 2920)
  // gets its MAIL, RCPT and DATA replies in one segment instead of three.
  void send(const std::string& text) { out_ += text; }
  void flush() {
    std::size_t sent = 0;
    while (sent < out_.size()) {
      const int n = socket().sendBytes(out_.data() + sent, static_cast<int>(out_.size() - sent));
      if (n <= 0) throw std::runtime_error("LMTP client closed the connection");
      sent += static_cast<std::size_t>(n);
    }
    out_.clear();
  }
  void send_quietly(const std::string& text) {
    try {
      send(text);
      flush();
    } catch (...) {  // closing anyway
    }
  }

  static constexpr std::size_t kMaxLine = 1 << 20;  // RFC 5321 allows 1000; be lenient
  std::size_t line_limit_ = kMaxLine;               // kMaxLine but in a message
  const LmtpSettings& settings_;
  const LmtpHandlers& handlers_;
  Logger& log_;
  Sessions& sessions_;
  std::string buffer_;
  std::string out_;          // replies not sent yet (see send)
  std::size_t start_ = 0;    // where the next line begins in buffer_
  std::size_t scanned_ = 0;  // buffer_ has no '\n' in [start_, scanned_)
  bool greeted_ = false;
  std::size_t declared_size_ = 0;  // MAIL FROM's SIZE=, 0 when not given
  std::optional<Envelope> envelope_;
};

class Factory : public Poco::Net::TCPServerConnectionFactory {
 public:
  Factory(const LmtpSettings& settings, const LmtpHandlers& handlers, Logger& log,
          Sessions& sessions)
      : settings_(settings), handlers_(handlers), log_(log), sessions_(sessions) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new Session(socket, settings_, handlers_, log_, sessions_);
  }

 private:
  const LmtpSettings& settings_;
  const LmtpHandlers& handlers_;
  Logger& log_;
  Sessions& sessions_;
};

}  // namespace

struct LmtpServer::Impl {
  LmtpSettings settings;
  LmtpHandlers handlers;
  Logger& log;
  Sessions sessions;
  // Its own threads: Poco's default pool stops at 16, which would cap max_connections there
  // (and share it with whatever else uses that pool). Declared first: outlives the server.
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::TCPServer> server;
};

LmtpServer::LmtpServer(LmtpSettings settings, LmtpHandlers handlers, Logger& log)
    : impl_(new Impl{std::move(settings), std::move(handlers), log, {}, nullptr, nullptr}) {}

LmtpServer::~LmtpServer() { stop(); }

int LmtpServer::start() {
  Poco::Net::ServerSocket socket;
  try {
    socket.bind(Poco::Net::SocketAddress(impl_->settings.host,
                                         static_cast<Poco::UInt16>(impl_->settings.port)),
                true, false);  // not SO_REUSEPORT: a port in use is refused, not shared
    socket.listen(64);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen for LMTP on " + impl_->settings.host + ":" +
                             std::to_string(impl_->settings.port) + ": " + e.displayText());
  }
  auto* params = new Poco::Net::TCPServerParams;
  params->setMaxThreads(impl_->settings.max_connections);
  params->setMaxQueued(impl_->settings.max_connections * 4);
  impl_->pool = std::make_unique<Poco::ThreadPool>(1, impl_->settings.max_connections);
  impl_->server = std::make_unique<Poco::Net::TCPServer>(
      new Factory(impl_->settings, impl_->handlers, impl_->log, impl_->sessions), *impl_->pool,
      socket, params);
  impl_->server->start();
  return impl_->server->socket().address().port();
}

void LmtpServer::stop() {
  if (!impl_ || !impl_->server) return;
  impl_->server->stop();
  // TCPServer::stop() does not wait for the sessions. End their reads (a delivery in
  // progress still finishes and answers), then wait, so no handler runs after stop().
  {
    std::lock_guard lock(impl_->sessions.mutex);
    impl_->sessions.stopping = true;
    for (auto* sock : impl_->sessions.sockets) {
      try {
        sock->shutdownReceive();
      } catch (const Poco::Exception&) {  // already closed by the client
      }
    }
  }
  while (impl_->server->currentConnections() > 0) {
    Poco::Thread::sleep(10);
  }
  impl_->server.reset();
  impl_->pool.reset();  // joins its idle threads
}

}  // namespace slmhub::mail
