// Sending mail over SMTP (RFC 5321) for the outbox: one connection per message, STARTTLS or
// implicit TLS with the server's certificate and name always verified, AUTH only inside TLS,
// and the server's verdict sorted into "retrying cannot help" (PermanentFailure) and "try
// again later" (std::runtime_error), which is the distinction the outbox acts on.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "slmhub/config.hpp"
#include "slmhub/events.hpp"
#include "slmhub/log.hpp"

namespace slmhub::mail {

struct SmtpSettings {
  std::string host = "127.0.0.1";
  int port = 25;
  // starttls: the server must offer STARTTLS, or nothing is sent (no silent downgrade).
  // implicit: TLS from the first byte ("submissions", port 465).
  enum class Tls { none, starttls, implicit } tls = Tls::starttls;
  // AUTH PLAIN (or LOGIN when the server offers only that); refused without TLS.
  std::string username, password;
  // A CA certificate file trusted besides the system's. There is no way to turn verification
  // off: a server that cannot be verified is not sent to.
  std::string ca_file;
  // The name given in EHLO. Empty: this machine's name when it is fully qualified (has a
  // dot), else the address literal of the connection's own end ("[192.0.2.10]"), which
  // RFC 5321 §4.1.1.1 allows; relays that reject a non-FQDN HELO refuse "localhost".
  std::string helo;
  int timeout_ms = 30000;  // for the connection and each read or write
  // A connection is reused for the next message (its transaction starts with MAIL) when that
  // comes within this many milliseconds; an older one is closed then, without QUIT. 0 closes
  // it after every message. Short, because a server may close an idle connection at any time;
  // one found closed before the next MAIL is answered is replaced by a new one, so nothing is
  // sent twice.
  int keep_alive_ms = 2000;
};

struct TlsContext;
class SmtpSession;

class SmtpClient {
 public:
  // Throws std::invalid_argument for settings that could never work or would be unsafe: a port
  // outside 1-65535, a timeout <= 0, a HELO name with spaces or line breaks, credentials with
  // Tls::none, or a CA file that cannot be read.
  explicit SmtpClient(SmtpSettings settings);
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Sends one message: envelope from `envelope_from` ("" is the null reverse-path of a
  // bounce), one RCPT per entry of `envelope_to`, then `message_bytes` as DATA. Line breaks
  // are sent as CRLF whatever they were (a bare CR or LF is how an end of data is smuggled)
  // and lines starting with '.' are dot-stuffed.
  //
  // All or nothing: the message is sent only when every recipient is accepted.
  // Throws PermanentFailure when the server answers 5xx to MAIL, RCPT or DATA (or the message
  // exceeds the size the server announced): the address or message is refused and retrying
  // cannot help. Throws std::runtime_error, quoting the server's reply, on 4xx replies,
  // refused or lost connections, timeouts, TLS and certificate failures, a server without
  // STARTTLS when it is required, and failed authentication: the outbox retries those.
  // Throws std::invalid_argument for addresses that are not plain addr-specs.
  //
  // `meanwhile`, if given, runs once, after MAIL FROM is written, while the server answers it
  // (the outbox records the previous message's outcome there). If it throws, the connection
  // is dropped before any of the message is sent and the exception passes through.
  void send(const std::vector<std::string>& envelope_to, const std::string& envelope_from,
            const std::string& message_bytes, const std::function<void()>& meanwhile = {}) const;

  const SmtpSettings& settings() const { return settings_; }

 private:
  std::unique_ptr<SmtpSession> take_idle() const;
  void keep_idle(std::unique_ptr<SmtpSession> session) const;

  SmtpSettings settings_;
  std::shared_ptr<const TlsContext> tls_;  // null with Tls::none
  // Connections kept open after their last message (keep_alive_ms), newest last: one for each
  // thread that sends at once (the outbox's lanes), at most kMaxIdle.
  static constexpr std::size_t kMaxIdle = 16;
  mutable std::mutex idle_mutex_;
  mutable std::vector<std::unique_ptr<SmtpSession>> idle_;
};

// The outbox sender for channel "email". An OutboxMessage becomes one mail to its destination
// (one address) with its subject and body, from `from` / `from_name`, dated by `clock`. Its
// headers object maps header names to string values; "From" ("Name <address>" or an address)
// replaces the sender, "Message-ID", "In-Reply-To" and "References" (ids with or without <>)
// fill those fields, every other entry becomes an extra header. Without a Message-ID the
// message gets one derived from the outbox id and content, so a retry of a message the server
// did keep carries the same Message-ID and the copies are recognisably one message.
//
// A message that can never be sent (a bad address, a header with a line break, a non-string
// header value) is a PermanentFailure; SmtpClient::send decides the rest. The settings are
// checked here, so a bad configuration fails at start-up rather than at the first mail.
// `clock` must outlive the returned function.
OutboxSender make_email_sender(SmtpSettings settings, std::string from, std::string from_name,
                               const Clock& clock);

// The smtp.* keys of every plugin that sends mail (host, port, tls, username, ca_file, from,
// from_name), with the same meaning everywhere; `host_help` says what an empty host means.
std::vector<ConfigKey> smtp_config_keys(const std::string& host_help,
                                        const std::string& password_secret);
// Those keys read back; std::invalid_argument naming plugins.<plugin>.smtp.tls for a bad value.
SmtpSettings smtp_settings_from_config(const Config& config, const std::string& plugin,
                                       std::string password);

}  // namespace slmhub::mail
