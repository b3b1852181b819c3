#include "smtp.hpp"

#include <unistd.h>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>

#include "compose.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/json.hpp"
#include "text.hpp"
#include "tls.hpp"

namespace slmhub::mail {

struct TlsContext {
  Poco::Net::Context::Ptr context;
};

namespace {

// A reply line or a reply longer than these is not an SMTP server talking (RFC 5321 §4.5.3.1.5
// allows 512 octets a line); stop reading rather than buffer whatever comes.
constexpr std::size_t kMaxReplyLine = 4096;
constexpr int kMaxReplyLines = 100;
constexpr std::size_t kMaxReplyQuoted = 512;
constexpr std::size_t kDataChunk = std::size_t{64} * 1024;

std::shared_ptr<const TlsContext> make_tls_context(const SmtpSettings& settings) {
  auto tls = std::make_shared<TlsContext>();
  tls->context = make_verified_client_context(settings.host, settings.ca_file, "SMTP settings");
  return tls;
}

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // the text after "250-" / "250 " of each line

  int kind() const { return code / 100; }
  // "550 5.1.1 no such user" for messages: printable characters only, cut when long.
  std::string quoted() const {
    std::string text = std::to_string(code);
    for (const auto& line : lines) {
      text += ' ';
      for (const char c : line) {
        const auto u = static_cast<unsigned char>(c);
        text += u >= 0x20 && u < 0x7F ? c : '?';
      }
    }
    if (text.size() > kMaxReplyQuoted) text = text.substr(0, kMaxReplyQuoted) + "...";
    return text;
  }
};

// One SMTP connection: the socket (plain, then possibly TLS), a read buffer and the reply
// parser. Every failure is a std::runtime_error naming the server; callers decide which
// replies are permanent.
class Connection {
 public:
  Connection(const SmtpSettings& settings, const TlsContext* tls)
      : settings_(settings), where_("SMTP server " + endpoint(settings.host, settings.port)) {
    const Poco::Timespan timeout(static_cast<Poco::Timespan::TimeDiff>(settings.timeout_ms) * 1000);
    socket_.connect(
        Poco::Net::SocketAddress(settings.host, static_cast<Poco::UInt16>(settings.port)), timeout);
    socket_.setReceiveTimeout(timeout);
    socket_.setSendTimeout(timeout);
    socket_.setNoDelay(true);
    if (settings.tls == SmtpSettings::Tls::implicit) secure(*tls);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& where() const { return where_; }
  bool is_secure() const { return secure_; }
  // This end of the connection as an RFC 5321 address literal: "[192.0.2.10]", "[IPv6:…]".
  std::string local_address_literal() const {
    const Poco::Net::IPAddress ip = socket_.address().host();
    return ip.family() == Poco::Net::IPAddress::IPv6 ? "[IPv6:" + ip.toString() + "]"
                                                     : "[" + ip.toString() + "]";
  }

  // RFC 3207 §4: after the 220, the client starts TLS at once. Bytes the server sent beyond
  // that reply were sent in clear and would be read as if they came over TLS (the STARTTLS
  // command injection of CVE-2011-0411): refuse them.
  void start_tls(const TlsContext& tls) {
    if (begin_ < buffer_.size() || socket_.available() > 0) {
      throw std::runtime_error(where_ +
                               " sent data after its STARTTLS reply, before TLS started; "
                               "refusing the connection");
    }
    secure(tls);
  }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const int sent = socket_.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
      if (sent <= 0) throw std::runtime_error(where_ + " stopped accepting data");
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  Reply command(const std::string& line) {
    write(line + "\r\n");
    return read_reply();
  }

  // RFC 5321 §4.2: "250-first", "250-more", "250 last"; every line carries the same code.
  Reply read_reply() {
    Reply reply;
    for (int count = 0; count < kMaxReplyLines; ++count) {
      const std::string line = read_line();
      const bool digits =
          line.size() >= 3 &&
          std::all_of(line.begin(), line.begin() + 3, [](char c) { return c >= '0' && c <= '9'; });
      const bool separated = digits && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
      const int code = digits ? std::stoi(line.substr(0, 3)) : 0;
      if (!digits || !separated || code < 200 || code > 599 ||
          (reply.code != 0 && code != reply.code)) {
        throw std::runtime_error(where_ + " sent a malformed reply line " + quote_text(line));
      }
      reply.code = code;
      reply.lines.push_back(line.size() > 4 ? line.substr(4) : std::string());
      if (line.size() == 3 || line[3] == ' ') return reply;
    }
    throw std::runtime_error(where_ + " sent a reply of more than " +
                             std::to_string(kMaxReplyLines) + " lines");
  }

 private:
  void secure(const TlsContext& tls) {
    socket_ = Poco::Net::SecureStreamSocket::attach(socket_, settings_.host, tls.context);
    secure_ = true;
  }

  std::string read_line() {
    for (;;) {
      if (auto line = take_line(buffer_, begin_, kMaxReplyLine,
                                where_ + " sent a reply line longer than " +
                                    std::to_string(kMaxReplyLine) + " bytes")) {
        return *line;
      }
      char chunk[1024];
      const int received = socket_.receiveBytes(chunk, sizeof chunk);
      if (received <= 0) throw std::runtime_error(where_ + " closed the connection");
      buffer_.append(chunk, static_cast<std::size_t>(received));
    }
  }

  const SmtpSettings& settings_;
  std::string where_;
  Poco::Net::StreamSocket socket_;
  bool secure_ = false;
  std::string buffer_;
  std::size_t begin_ = 0;
};

// The extensions of an EHLO reply: keyword (upper case) → its parameters.
std::map<std::string, std::string> extensions(const Reply& ehlo) {
  std::map<std::string, std::string> out;
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string& line = ehlo.lines[i];
    const auto space = line.find(' ');
    out[upper(line.substr(0, space))] =
        space == std::string::npos ? std::string() : line.substr(space + 1);
  }
  return out;
}

bool has_word(std::string_view words, std::string_view word) {
  std::size_t start = 0;
  while (start < words.size()) {
    auto end = words.find(' ', start);
    if (end == std::string_view::npos) end = words.size();
    if (upper(words.substr(start, end - start)) == word) return true;
    start = end + 1;
  }
  return false;
}

// The message as DATA: CRLF line breaks only, '.' doubled at the start of a line (RFC 5321
// §4.5.2), a final CRLF when the message lacks one, then the end-of-data line. Written in
// chunks, so a large message is not copied whole.
void write_data(Connection& connection, std::string_view message) {
  std::string chunk;
  chunk.reserve(kDataChunk + 8);
  bool line_start = true;
  for (std::size_t at = 0; at < message.size(); ++at) {
    const char c = message[at];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && at + 1 < message.size() && message[at + 1] == '\n') ++at;
      chunk += "\r\n";
      line_start = true;
    } else {
      if (line_start && c == '.') chunk += '.';
      chunk += c;
      line_start = false;
    }
    if (chunk.size() >= kDataChunk) {
      connection.write(chunk);
      chunk.clear();
    }
  }
  if (!line_start) chunk += "\r\n";
  chunk += ".\r\n";
  connection.write(chunk);
}

}  // namespace

// Thrown by SmtpSession::deliver on a kept-open session that turned out closed (the server hung
// up while it was idle) before anything of the message was sent: the message is sent again
// on a new connection, which cannot make a duplicate.
struct StaleSession : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One SMTP connection from greeting to QUIT, carrying one mail transaction after another.
class SmtpSession {
 public:
  SmtpSession(const SmtpSettings& settings, const TlsContext* tls)
      : settings_(settings), tls_(tls), connection_(settings, tls) {}

  // Greeting, EHLO, STARTTLS when required, AUTH when configured.
  void open() {
    const Reply greeting = connection_.read_reply();
    if (greeting.code != 220) fail(greeting, "greeted with");
    ext_ = hello();
    if (settings_.tls == SmtpSettings::Tls::starttls) {
      if (ext_.count("STARTTLS") == 0) {
        quit();
        throw std::runtime_error(connection_.where() +
                                 " does not offer STARTTLS, which the settings require; "
                                 "nothing was sent in clear");
      }
      const Reply started = connection_.command("STARTTLS");
      if (started.code != 220) fail(started, "refused STARTTLS:");
      connection_.start_tls(*tls_);
      ext_ = hello();  // RFC 3207 §4.2: what the server offered in clear no longer counts
    }
    if (!settings_.username.empty()) authenticate(ext_);
  }

  // One mail transaction. Any failure ends the session (QUIT sent): only a session whose
  // last message went through is used again. `reused`: the session carried a message before,
  // so a connection found closed before MAIL is answered is StaleSession.
  void deliver(const std::vector<std::string>& to, const std::string& from,
               const std::string& message, bool reused, const std::function<void()>& meanwhile) {
    const auto& ext = ext_;
    std::string mail = "MAIL FROM:<" + from + ">";
    if (const auto size = ext.find("SIZE"); size != ext.end()) {
      const auto limit = std::strtoull(size->second.c_str(), nullptr, 10);
      if (limit > 0 && message.size() > limit) {
        quit();
        throw PermanentFailure(connection_.where() + " accepts messages up to " +
                               std::to_string(limit) + " bytes; this one has " +
                               std::to_string(message.size()));
      }
      mail += " SIZE=" + std::to_string(message.size());
    }
    const bool eight_bit = std::any_of(message.begin(), message.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x80;
    });
    if (eight_bit && ext.count("8BITMIME") != 0) mail += " BODY=8BITMIME";
    // A reused connection that fails before MAIL is answered was closed while idle.
    const auto unless_stale = [reused](auto&& step) {
      try {
        return step();
      } catch (const std::exception& e) {
        if (reused) throw StaleSession(e.what());
        throw;
      }
    };
    unless_stale([&] { connection_.write(mail + "\r\n"); });
    // The caller's work is done while the server answers MAIL. If it throws, the transaction
    // is abandoned with the connection, before any of the message is sent.
    meanwhile();
    const Reply mail_reply = unless_stale([&] { return connection_.read_reply(); });
    // 421: the server is closing this (idle) connection.
    if (reused && mail_reply.code == 421) throw StaleSession(mail_reply.quoted());
    if (mail_reply.kind() != 2) refuse(mail_reply, "refused MAIL FROM:<" + from + ">:");

    std::string refused;
    bool permanent = false;
    for (const auto& recipient : to) {
      const Reply reply = connection_.command("RCPT TO:<" + recipient + ">");
      if (reply.kind() == 2) continue;
      refused += (refused.empty() ? "" : "; ") + ("<" + recipient + ">: " + reply.quoted());
      permanent = permanent || reply.kind() == 5;
    }
    if (!refused.empty()) {
      quit();
      const std::string text = connection_.where() + " refused RCPT TO " + refused;
      if (permanent) throw PermanentFailure(text);
      throw std::runtime_error(text);
    }

    const Reply data = connection_.command("DATA");
    if (data.code != 354) refuse(data, "refused DATA:");
    write_data(connection_, message);
    const Reply accepted = connection_.read_reply();
    if (accepted.kind() != 2) refuse(accepted, "refused the message:");
  }

  // A polite end; the message's fate is already decided, so a failure here changes nothing.
  void quit() noexcept {
    try {
      connection_.command("QUIT");
    } catch (...) {  // NOLINT(bugprone-empty-catch): see above
    }
  }

  std::chrono::steady_clock::time_point idle_since{};

 private:
  std::string hello_name() const {
    if (!settings_.helo.empty()) return settings_.helo;
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && std::strchr(name, '.') != nullptr) return name;
    return connection_.local_address_literal();
  }

  std::map<std::string, std::string> hello() {
    const std::string name = hello_name();
    const Reply ehlo = connection_.command("EHLO " + name);
    if (ehlo.kind() == 2) return extensions(ehlo);
    // RFC 5321 §3.2: a server that does not know EHLO still speaks HELO, without extensions
    // (so without STARTTLS or AUTH, which the checks after this refuse when needed).
    if (ehlo.code == 500 || ehlo.code == 502) {
      const Reply helo = connection_.command("HELO " + name);
      if (helo.kind() == 2) return {};
      fail(helo, "refused HELO:");
    }
    fail(ehlo, "refused EHLO:");
  }

  void authenticate(const std::map<std::string, std::string>& ext) {
    const auto auth = ext.find("AUTH");
    const std::string offered = auth == ext.end() ? std::string() : auth->second;
    const std::string& user = settings_.username;
    Reply reply;
    if (has_word(offered, "PLAIN")) {
      const std::string response =
          base64_encode(std::string(1, '\0') + user + '\0' + settings_.password);
      reply = connection_.command("AUTH PLAIN " + response);
      // A server that does not take the initial response asks for it (RFC 4954 §4).
      if (reply.code == 334) reply = connection_.command(response);
    } else if (has_word(offered, "LOGIN")) {
      reply = connection_.command("AUTH LOGIN");
      if (reply.code == 334) reply = connection_.command(base64_encode(user));
      if (reply.code == 334) reply = connection_.command(base64_encode(settings_.password));
    } else {
      quit();
      throw std::runtime_error(connection_.where() + " offers " +
                               (offered.empty() ? "no AUTH" : "AUTH " + offered) +
                               ", not PLAIN or LOGIN; the configured credentials cannot be used");
    }
    // Never permanent: a wrong password is fixed in the configuration, and the outbox's
    // messages should still go out then.
    if (reply.code != 235) {
      quit();
      throw std::runtime_error(connection_.where() + " refused the credentials of user " +
                               quote_text(user) + ": " + reply.quoted());
    }
  }

  // A refusal outside the mail transaction (greeting, EHLO, STARTTLS): whatever its code, it
  // is about the server or the connection, not this message, so the outbox tries again.
  [[noreturn]] void fail(const Reply& reply, const std::string& what) {
    quit();
    throw std::runtime_error(connection_.where() + " " + what + " " + reply.quoted());
  }

  // A refusal of MAIL, DATA or the message itself: 5xx is the server's final word on this
  // message, 4xx (or an unexpected code) may pass.
  [[noreturn]] void refuse(const Reply& reply, const std::string& what) {
    quit();
    const std::string text = connection_.where() + " " + what + " " + reply.quoted();
    if (reply.kind() == 5) throw PermanentFailure(text);
    throw std::runtime_error(text);
  }

  const SmtpSettings& settings_;
  const TlsContext* tls_;
  Connection connection_;
  std::map<std::string, std::string> ext_;
};

namespace {

// "<a@example.org> <b@example.org>" or bare ids separated by spaces → ids without <>.
std::vector<std::string> parse_ids(std::string_view value) {
  std::vector<std::string> ids;
  if (value.find('<') != std::string_view::npos) {
    for (auto open = value.find('<'); open != std::string_view::npos;
         open = value.find('<', open + 1)) {
      const auto close = value.find('>', open);
      if (close == std::string_view::npos) break;
      ids.emplace_back(value.substr(open + 1, close - open - 1));
      open = close;
    }
    return ids;
  }
  std::size_t start = 0;
  while (start < value.size()) {
    const auto space = value.find_first_of(" \t", start);
    const auto end = space == std::string_view::npos ? value.size() : space;
    if (end > start) ids.emplace_back(value.substr(start, end - start));
    start = end + 1;
  }
  return ids;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "Team <team@example.org>", "\"Doe, Jo\" <jo@example.org>" or "team@example.org".
void parse_from(std::string_view value, OutgoingMail& mail) {
  value = trim(value);
  const auto open = value.rfind('<');
  if (open == std::string_view::npos || value.back() != '>') {
    mail.from = std::string(value);
    mail.from_name.clear();
    return;
  }
  mail.from = std::string(value.substr(open + 1, value.size() - open - 2));
  std::string_view name = trim(value.substr(0, open));
  mail.from_name.clear();
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    name = name.substr(1, name.size() - 2);
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '\\' && i + 1 < name.size()) ++i;
      mail.from_name += name[i];
    }
  } else {
    mail.from_name = std::string(name);
  }
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

OutgoingMail to_mail(const OutboxMessage& message, const std::string& from,
                     const std::string& from_name) {
  OutgoingMail mail;
  mail.from = from;
  mail.from_name = from_name;
  mail.to = {message.destination};
  mail.subject = message.subject;
  mail.body = message.body;
  if (!message.headers.is_null() && !message.headers.is_object()) {
    throw std::invalid_argument("headers must be a JSON object of name → string, found " +
                                json_type_name(message.headers));
  }
  if (message.headers.is_object()) {
    for (const auto& [name, value] : message.headers.items()) {
      if (!value.is_string()) {
        throw std::invalid_argument("header " + quote_text(name) + " must be a string, found " +
                                    json_type_name(value));
      }
      const auto& text = value.get_ref<const std::string&>();
      if (same_name(name, "From")) {
        parse_from(text, mail);
      } else if (same_name(name, "Message-ID")) {
        const auto ids = parse_ids(text);
        if (ids.size() != 1) {
          throw std::invalid_argument("header Message-ID " + quote_text(text) +
                                      " must hold exactly one id");
        }
        mail.message_id = ids.front();
      } else if (same_name(name, "In-Reply-To")) {
        mail.in_reply_to = parse_ids(text);
      } else if (same_name(name, "References")) {
        mail.references = parse_ids(text);
      } else {
        mail.headers.emplace_back(name, text);
      }
    }
  }
  if (mail.message_id.empty() && is_plain_address(mail.from)) {
    const std::string content = std::to_string(message.id) + '\n' + message.destination + '\n' +
                                message.dedupe_key + '\n' + message.subject + '\n' + message.body;
    mail.message_id = "slmhub." + sha256_hex(content).substr(0, 32) + "@" +
                      mail.from.substr(mail.from.rfind('@') + 1);
  }
  return mail;
}

}  // namespace

SmtpClient::SmtpClient(SmtpSettings settings) : settings_(std::move(settings)) {
  const auto invalid = [](const std::string& what) {
    throw std::invalid_argument("SMTP settings: " + what);
  };
  check_server_settings("SMTP settings", settings_.host, settings_.port, settings_.timeout_ms);
  if (has_space_or_control(settings_.helo)) {
    invalid("helo " + quote_text(settings_.helo) + " must be one word (a host name)");
  }
  if (settings_.username.empty() && !settings_.password.empty()) {
    invalid("a password is set without a username");
  }
  if (!settings_.username.empty() && settings_.tls == SmtpSettings::Tls::none) {
    invalid("credentials are never sent without TLS; set tls to starttls or implicit");
  }
  if (settings_.tls != SmtpSettings::Tls::none) tls_ = make_tls_context(settings_);
}

void SmtpClient::send(const std::vector<std::string>& envelope_to, const std::string& envelope_from,
                      const std::string& message_bytes,
                      const std::function<void()>& meanwhile) const {
  if (envelope_to.empty()) throw std::invalid_argument("SMTP: a message needs a recipient");
  for (const auto& to : envelope_to) {
    if (!is_plain_address(to)) {
      throw std::invalid_argument("SMTP: recipient " + quote_text(to) +
                                  " is not a plain addr-spec (local@domain)");
    }
  }
  if (!envelope_from.empty() && !is_plain_address(envelope_from)) {
    throw std::invalid_argument("SMTP: sender " + quote_text(envelope_from) +
                                " is not a plain addr-spec (local@domain) or empty");
  }
  // Once, although a stale kept connection means a second MAIL on a new one.
  bool ran = false;
  const std::function<void()> once = [&] {
    if (!std::exchange(ran, true) && meanwhile) meanwhile();
  };
  try {
    if (auto session = take_idle()) {
      try {
        session->deliver(envelope_to, envelope_from, message_bytes, true, once);
        keep_idle(std::move(session));
        return;
      } catch (const StaleSession&) {
        // Closed while idle, before anything of this message was sent: a new connection.
      }
    }
    auto session = std::make_unique<SmtpSession>(settings_, tls_.get());
    session->open();
    session->deliver(envelope_to, envelope_from, message_bytes, false, once);
    keep_idle(std::move(session));
  } catch (const Poco::Exception& e) {
    // Connection refused, timeouts, TLS handshake and certificate failures.
    throw std::runtime_error("SMTP server " + endpoint(settings_.host, settings_.port) + ": " +
                             e.displayText());
  }
}

// An idle connection is closed without QUIT: the server may have closed it already, and a
// goodbye is not worth a write to a dead TLS socket. Servers treat a dropped idle connection
// as the end of the session.
SmtpClient::~SmtpClient() = default;

std::unique_ptr<SmtpSession> SmtpClient::take_idle() const {
  std::vector<std::unique_ptr<SmtpSession>> expired;  // closed outside the lock
  std::unique_ptr<SmtpSession> session;
  {
    std::lock_guard lock(idle_mutex_);
    const auto now = std::chrono::steady_clock::now();
    const auto fresh = std::stable_partition(idle_.begin(), idle_.end(), [&](const auto& s) {
      return now - s->idle_since <= std::chrono::milliseconds(settings_.keep_alive_ms);
    });
    std::move(fresh, idle_.end(), std::back_inserter(expired));
    idle_.erase(fresh, idle_.end());
    if (!idle_.empty()) {
      session = std::move(idle_.back());  // the most recently used: the least likely closed
      idle_.pop_back();
    }
  }
  return session;
}

void SmtpClient::keep_idle(std::unique_ptr<SmtpSession> session) const {
  if (settings_.keep_alive_ms <= 0) {
    session->quit();
    return;
  }
  session->idle_since = std::chrono::steady_clock::now();
  std::unique_ptr<SmtpSession> oldest;  // closed outside the lock when there are too many
  {
    std::lock_guard lock(idle_mutex_);
    if (idle_.size() >= kMaxIdle) {
      oldest = std::move(idle_.front());
      idle_.erase(idle_.begin());
    }
    idle_.push_back(std::move(session));
  }
}

OutboxSender make_email_sender(SmtpSettings settings, std::string from, std::string from_name,
                               const Clock& clock) {
  if (!is_plain_address(from)) {
    throw std::invalid_argument("email sender: the From address " + quote_text(from) +
                                " is not a plain addr-spec (local@domain)");
  }
  auto client = std::make_shared<const SmtpClient>(std::move(settings));
  return [client, from = std::move(from), from_name = std::move(from_name), clock = &clock](
             const OutboxMessage& message, const Meanwhile& meanwhile) {
    OutgoingMail mail;
    std::string bytes;
    try {
      mail = to_mail(message, from, from_name);
      mail.date = clock->now();
      bytes = compose(mail);
    } catch (const std::invalid_argument& e) {
      throw PermanentFailure("email (outbox message " + std::to_string(message.id) + " to " +
                             quote_text(message.destination) + ") cannot be sent: " + e.what());
    }
    client->send(mail.to, mail.from, bytes, meanwhile);
  };
}

std::vector<ConfigKey> smtp_config_keys(const std::string& host_help,
                                        const std::string& password_secret) {
  using T = ConfigType;
  return {{"smtp.host", T::string, "", host_help},
          {"smtp.port", T::integer, "25", "SMTP port"},
          {"smtp.tls", T::string, "starttls", "none, starttls or implicit"},
          {"smtp.username", T::string, "",
           "SMTP AUTH user (the password is secret " + password_secret + ")"},
          {"smtp.ca_file", T::string, "", "extra CA certificate file to verify the SMTP server"},
          {"smtp.helo", T::string, "",
           "the name given in EHLO; empty: this machine's name if fully qualified, else the "
           "address literal of the connection ([192.0.2.10])"},
          {"smtp.from", T::string, "", "the sender address"},
          {"smtp.from_name", T::string, "slmhub", "display name of that sender"}};
}

SmtpSettings smtp_settings_from_config(const Config& config, const std::string& plugin,
                                       std::string password) {
  SmtpSettings smtp;
  smtp.host = config.string("smtp.host");
  smtp.port = static_cast<int>(config.integer("smtp.port", 25));
  const std::string tls = config.string("smtp.tls", "starttls");
  if (tls == "none") {
    smtp.tls = SmtpSettings::Tls::none;
  } else if (tls == "starttls") {
    smtp.tls = SmtpSettings::Tls::starttls;
  } else if (tls == "implicit") {
    smtp.tls = SmtpSettings::Tls::implicit;
  } else {
    throw std::invalid_argument("plugins." + plugin +
                                ".smtp.tls must be none, starttls or implicit, not '" + tls + "'");
  }
  smtp.username = config.string("smtp.username");
  smtp.password = std::move(password);
  smtp.ca_file = config.string("smtp.ca_file");
  smtp.helo = config.string("smtp.helo");
  return smtp;
}

}  // namespace slmhub::mail
