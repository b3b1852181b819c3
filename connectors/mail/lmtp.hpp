// An LMTP server (RFC 2033) for an MTA to deliver to (Postfix `lmtp:inet:127.0.0.1:2424`).
// Unlike SMTP, LMTP answers DATA once per recipient, and only after the delivery callback
// returns, so "250" means the message is committed for that recipient and a temporary
// failure (451/452) makes the MTA keep the message and retry: nothing acknowledged is lost.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/log.hpp"

namespace slmhub::mail {

struct LmtpReply {
  int code = 250;
  std::string enhanced = "2.0.0";  // RFC 3463 status code
  std::string text = "OK";
};

struct Envelope {
  std::string mail_from;                // the reverse-path, "" for <> (a bounce)
  std::vector<std::string> recipients;  // as given in RCPT TO, without <>
};

struct LmtpHandlers {
  // Whether a recipient is served here: nullopt accepts it; a reply refuses it (550 5.1.1
  // for an unknown address, 451 when the answer cannot be known now).
  std::function<std::optional<LmtpReply>(const std::string& recipient)> check_recipient;
  // Commits the message for each recipient and returns one reply per recipient, in order.
  // Must return only when what it acknowledges with 250 is durable; an exception answers
  // 451 4.3.0 for every recipient.
  std::function<std::vector<LmtpReply>(const Envelope&, std::string message)> deliver;
};

struct LmtpSettings {
  std::string host = "127.0.0.1";
  int port = 2424;  // 0 picks a free port
  int max_connections = 16;
  std::size_t max_message_bytes = 50u << 20;  // larger messages: 552 5.3.4, not stored
  int idle_timeout_ms = 300000;               // RFC 5321 §4.5.3.2: 5 minutes per command
  std::string hostname = "slmhub";
};

class LmtpServer {
 public:
  LmtpServer(LmtpSettings settings, LmtpHandlers handlers, Logger& log);
  ~LmtpServer();
  LmtpServer(const LmtpServer&) = delete;
  LmtpServer& operator=(const LmtpServer&) = delete;

  // Starts listening; returns the bound port. Throws std::runtime_error naming the address
  // when it cannot bind.
  int start();
  // Stops accepting, and waits for the sessions in progress to end.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slmhub::mail
