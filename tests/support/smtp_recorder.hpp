// A real SMTP server for tests of outgoing mail (DESIGN.md §6): smtp_recorder.py runs Debian's
// aiosmtpd on 127.0.0.1 and a free port, with STARTTLS or implicit TLS on a freshly generated
// self-signed certificate when asked, and records every message it accepts. The server stops
// and its temp directory is removed when the object dies. Tests fail (never skip) when
// python3-aiosmtpd or openssl is missing.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "certificate.hpp"

namespace slmhub::test {

class ScriptServer;

struct SmtpRecorderOptions {
  enum class Tls { none, starttls, implicit } tls = Tls::none;
  // The name the generated certificate is issued for: an IP address becomes an iPAddress
  // entry, anything else a dNSName.
  std::string certificate_name = "127.0.0.1";
  std::vector<std::string> refuse;    // recipients answered 550 (permanent)
  std::vector<std::string> tempfail;  // recipients answered 451 (try again later)
  // When set, AUTH PLAIN and LOGIN are offered (over TLS only) and accept this pair.
  std::string username, password;
  // 0: a free port the kernel picks; else this one (a server brought back after an outage).
  int port = 0;
};

// One message as the server received it.
struct RecordedMail {
  std::string mail_from;                  // "" for the null reverse-path
  std::vector<std::string> mail_options;  // e.g. "SIZE=1234"
  std::vector<std::string> rcpt_to;
  std::string data;       // the message bytes, dot-stuffing undone
  std::string helo;       // the name the client gave in EHLO/HELO
  bool tls = false;       // received over TLS (STARTTLS or implicit)
  std::string auth_user;  // "" when the client did not authenticate
  int peer_port = 0;      // the client's port: the same for messages of one connection
};

class SmtpRecorder {
 public:
  // Starts the server and waits until it listens; throws std::runtime_error with the server's
  // output when it cannot.
  explicit SmtpRecorder(const SmtpRecorderOptions& options = {});
  ~SmtpRecorder();
  SmtpRecorder(const SmtpRecorder&) = delete;
  SmtpRecorder& operator=(const SmtpRecorder&) = delete;

  int port() const;
  // The server's certificate, to be trusted as the CA; "" without TLS.
  std::string ca_file() const { return certificate_.certificate.string(); }

  // Every message received so far, in the order received.
  std::vector<RecordedMail> messages() const;
  // messages() once there are at least `count`, or whatever there is when `timeout` passes.
  std::vector<RecordedMail> wait_for(std::size_t count, std::chrono::milliseconds timeout) const;

  // What the server wrote to stderr, for failure messages.
  std::string log() const;

 private:
  std::filesystem::path dir_;
  std::filesystem::path messages_;
  Certificate certificate_;
  std::unique_ptr<ScriptServer> server_;
};

}  // namespace slmhub::test
