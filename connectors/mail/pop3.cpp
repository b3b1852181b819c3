#include "pop3.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <string_view>
#include <utility>

#include "slmhub/json.hpp"
#include "text.hpp"
#include "tls.hpp"

namespace slmhub::mail {

struct Pop3Client::Tls {
  Poco::Net::Context::Ptr context;
};

namespace {

// A status or listing line longer than this is not a POP3 server talking (RFC 2449 §4 allows
// 512 octets for a response line); stop reading rather than buffer whatever comes.
constexpr std::size_t kMaxLine = 4096;
// Listings keep at most this many messages; the rest are read and dropped, and come up again
// once the first ones are gone. It bounds what a huge maildrop costs one poll.
constexpr std::size_t kMaxListed = 100000;
constexpr std::size_t kReadChunk = std::size_t{64} * 1024;

bool has_line_break(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// "12 rest" → 12 and "rest"; false when the line does not start with a positive number.
bool split_number(std::string_view line, long long& number, std::string_view& rest) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space == 0) return false;
  const auto [end, error] = std::from_chars(line.data(), line.data() + space, number);
  if (error != std::errc() || end != line.data() + space || number <= 0) return false;
  rest = line.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return !rest.empty();
}

}  // namespace

struct Pop3Reply {
  bool ok = false;
  std::string line;  // the whole status line, for messages
};

// One POP3 connection: the socket (plain, then possibly TLS), a read buffer, and the readers
// for status lines, listings and messages. Failures are std::runtime_error naming the server.
class Pop3Session::Connection {
 public:
  Connection(const Pop3Settings& settings, Poco::Net::Context::Ptr context)
      : host_(settings.host),
        where_("POP3 server " + endpoint(settings.host, settings.port)),
        context_(std::move(context)) {
    const Poco::Timespan timeout(static_cast<Poco::Timespan::TimeDiff>(settings.timeout_ms) * 1000);
    socket_.connect(
        Poco::Net::SocketAddress(settings.host, static_cast<Poco::UInt16>(settings.port)), timeout);
    socket_.setReceiveTimeout(timeout);
    socket_.setSendTimeout(timeout);
    socket_.setNoDelay(true);
    if (settings.tls == Pop3Settings::Tls::implicit) secure();
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& where() const { return where_; }

  // RFC 2595 §4: after the +OK to STLS the client starts TLS at once. Bytes the server sent
  // beyond that reply came in clear and would be read as if they came over TLS (the command
  // injection of CVE-2011-0411): refuse them.
  void start_tls() {
    if (begin_ < buffer_.size() || socket_.available() > 0) {
      throw std::runtime_error(where_ +
                               " sent data after its STLS reply, before TLS started; "
                               "refusing the connection");
    }
    secure();
  }

  Pop3Reply command(const std::string& line) {
    write(line + "\r\n");
    return read_status();
  }

  // A command whose -ERR ends the session's usefulness: throws with `what` and the reply.
  std::string expect_ok(const std::string& line, const std::string& what) {
    Pop3Reply reply = command(line);
    if (!reply.ok) throw std::runtime_error(where_ + " " + what + ": " + printable(reply.line));
    return reply.line;
  }

  Pop3Reply read_status() {
    Pop3Reply reply;
    reply.line = read_line();
    if (reply.line.starts_with("+OK")) {
      reply.ok = true;
    } else if (!reply.line.starts_with("-ERR")) {
      throw std::runtime_error(where_ + " sent a malformed status line " +
                               quote_text(printable(reply.line)));
    }
    return reply;
  }

  // The lines of a multi-line response up to the terminating ".", dot-stuffing undone; keeps
  // at most `max_lines`, reading and dropping the rest.
  std::vector<std::string> read_lines(std::size_t max_lines) {
    std::vector<std::string> lines;
    for (;;) {
      std::string line = read_line();
      if (line == ".") return lines;
      if (line.starts_with('.')) line.erase(0, 1);
      if (lines.size() < max_lines) lines.push_back(std::move(line));
    }
  }

  // A multi-line response holding a message (RETR). Line breaks are kept as sent; a line's
  // leading '.' is dot-stuffing and is removed (RFC 1939 §3). Past `max_bytes` the rest is
  // read and dropped, so the connection stays in step, and `too_large` is set.
  std::string read_message(std::size_t max_bytes, bool& too_large) {
    std::string out;
    too_large = false;
    const auto emit = [&](const char* data, std::size_t size) {
      if (too_large) return;
      if (out.size() + size > max_bytes) {
        too_large = true;
        std::string().swap(out);
        return;
      }
      out.append(data, size);
    };
    bool line_start = true;
    int dot = 0;  // 1: a '.' opened the line; 2: then a CR
    for (;;) {
      if (begin_ == buffer_.size()) {
        buffer_.clear();
        begin_ = 0;
        fill();
      }
      if (dot == 0 && !line_start) {
        // The middle of a line: copy up to and including its LF in one go.
        const auto newline = buffer_.find('\n', begin_);
        const std::size_t end = newline == std::string::npos ? buffer_.size() : newline + 1;
        emit(buffer_.data() + begin_, end - begin_);
        begin_ = end;
        line_start = newline != std::string::npos;
        continue;
      }
      const char c = buffer_[begin_++];
      if (dot == 2) {
        if (c == '\n') return out;
        // ".\r" and more: the dot was stuffing and the CR is content.
        emit("\r", 1);
        dot = 0;
        line_start = false;
        --begin_;
        continue;
      }
      if (dot == 1) {
        if (c == '\r') {
          dot = 2;
          continue;
        }
        if (c == '\n') return out;  // ".\n": a server that ends lines with LF alone
        dot = 0;
        line_start = false;
        --begin_;
        continue;
      }
      if (c == '.') {
        dot = 1;
        line_start = false;
        continue;
      }
      emit(&c, 1);
      line_start = c == '\n';
    }
  }

 private:
  void secure() { socket_ = Poco::Net::SecureStreamSocket::attach(socket_, host_, context_); }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const int sent = socket_.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
      if (sent <= 0) throw std::runtime_error(where_ + " stopped accepting data");
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  void fill() {
    char chunk[kReadChunk];
    const int received = socket_.receiveBytes(chunk, sizeof chunk);
    if (received <= 0) throw std::runtime_error(where_ + " closed the connection");
    buffer_.append(chunk, static_cast<std::size_t>(received));
  }

  std::string read_line() {
    for (;;) {
      if (auto line = take_line(buffer_, begin_, kMaxLine,
                                where_ + " sent a line longer than " + std::to_string(kMaxLine) +
                                    " bytes where a reply was expected")) {
        return *line;
      }
      fill();
    }
  }

  std::string host_;
  std::string where_;
  Poco::Net::Context::Ptr context_;
  Poco::Net::StreamSocket socket_;
  std::string buffer_;
  std::size_t begin_ = 0;
};

namespace {

// Runs `step`, turning Poco's exceptions (refused connections, timeouts, TLS and certificate
// failures) into std::runtime_error naming the server.
template <typename Step>
auto guarded(const std::string& where, Step&& step) {
  try {
    return step();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error(where + ": " + e.displayText());
  }
}

}  // namespace

Pop3Client::Pop3Client(Pop3Settings settings) : settings_(std::move(settings)) {
  const auto invalid = [](const std::string& what) {
    throw std::invalid_argument("POP3 settings: " + what);
  };
  check_server_settings("POP3 settings", settings_.host, settings_.port, settings_.timeout_ms);
  if (settings_.username.empty() || has_space_or_control(settings_.username)) {
    invalid("username " + quote_text(settings_.username) +
            " must be set, without spaces or control characters");
  }
  if (settings_.password.empty() || has_line_break(settings_.password)) {
    invalid("the password must be set, without line breaks");
  }
  tls_ = std::make_unique<Tls>();
  tls_->context = make_verified_client_context(settings_.host, settings_.ca_file, "POP3 settings");
}

Pop3Client::~Pop3Client() = default;

std::unique_ptr<Pop3Session> Pop3Client::open() const {
  const std::string where = "POP3 server " + endpoint(settings_.host, settings_.port);
  return guarded(where, [&] {
    auto connection = std::make_unique<Pop3Session::Connection>(settings_, tls_->context);
    const Pop3Reply greeting = connection->read_status();
    if (!greeting.ok) {
      throw std::runtime_error(where + " greeted with " + printable(greeting.line));
    }
    if (settings_.tls == Pop3Settings::Tls::starttls) {
      // RFC 2449 CAPA; a server without it cannot have announced STLS either.
      const Pop3Reply capa = connection->command("CAPA");
      bool offers_stls = false;
      if (capa.ok) {
        for (const auto& line : connection->read_lines(kMaxListed)) {
          offers_stls = offers_stls || upper(line.substr(0, line.find(' '))) == "STLS";
        }
      }
      if (!offers_stls) {
        connection->command("QUIT");
        throw std::runtime_error(where +
                                 " does not offer STLS, which the settings require; the "
                                 "credentials were not sent");
      }
      connection->expect_ok("STLS", "refused STLS");
      connection->start_tls();
    }
    connection->expect_ok("USER " + settings_.username,
                          "refused the user " + quote_text(settings_.username));
    // Never quote PASS or its reply context beyond the server's own words.
    const Pop3Reply pass = connection->command("PASS " + settings_.password);
    if (!pass.ok) {
      throw std::runtime_error(where + " refused the credentials of user " +
                               quote_text(settings_.username) + ": " + printable(pass.line));
    }
    return std::unique_ptr<Pop3Session>(new Pop3Session(std::move(connection)));
  });
}

Pop3Session::Pop3Session(std::unique_ptr<Connection> connection)
    : connection_(std::move(connection)) {}

Pop3Session::~Pop3Session() = default;

std::vector<Pop3Message> Pop3Session::list() {
  Connection& c = *connection_;
  return guarded(c.where(), [&] {
    std::map<long long, Pop3Message> by_number;
    c.expect_ok("UIDL", "refused UIDL (unique ids are needed to poll safely)");
    for (const auto& line : c.read_lines(kMaxListed)) {
      long long number = 0;
      std::string_view uid;
      if (!split_number(line, number, uid) || number > (1LL << 31) || has_space_or_control(uid)) {
        throw std::runtime_error(c.where() + " sent a malformed UIDL line " +
                                 quote_text(printable(line)));
      }
      Pop3Message& message = by_number[number];
      message.number = static_cast<int>(number);
      message.uid = std::string(uid);
    }
    c.expect_ok("LIST", "refused LIST");
    for (const auto& line : c.read_lines(kMaxListed)) {
      long long number = 0;
      std::string_view rest;
      unsigned long long size = 0;
      const bool parsed = split_number(line, number, rest);
      const auto digits = rest.substr(0, rest.find(' '));
      const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
      if (!parsed || error != std::errc() || end != digits.data() + digits.size()) {
        throw std::runtime_error(c.where() + " sent a malformed LIST line " +
                                 quote_text(printable(line)));
      }
      if (const auto found = by_number.find(number); found != by_number.end()) {
        found->second.size = static_cast<std::size_t>(size);
      }
    }
    std::vector<Pop3Message> out;
    out.reserve(by_number.size());
    for (auto& [number, message] : by_number) out.push_back(std::move(message));
    return out;
  });
}

std::string Pop3Session::retrieve(int number, std::size_t max_bytes) {
  Connection& c = *connection_;
  return guarded(c.where(), [&] {
    if (const Pop3Reply reply = c.command("RETR " + std::to_string(number)); !reply.ok) {
      throw MessageRefused(c.where() + " refused to retrieve message " + std::to_string(number) +
                           ": " + printable(reply.line));
    }
    bool too_large = false;
    std::string message = c.read_message(max_bytes, too_large);
    if (too_large) {
      throw MessageTooLarge(c.where() + ": message " + std::to_string(number) + " has more than " +
                            std::to_string(max_bytes) + " bytes");
    }
    return message;
  });
}

void Pop3Session::remove(int number) {
  Connection& c = *connection_;
  guarded(c.where(), [&] {
    c.expect_ok("DELE " + std::to_string(number),
                "refused to delete message " + std::to_string(number));
  });
}

void Pop3Session::quit() {
  Connection& c = *connection_;
  guarded(c.where(),
          [&] { c.expect_ok("QUIT", "did not confirm removing the deleted messages at QUIT"); });
}

}  // namespace slmhub::mail
