// Reading a mailbox over POP3 (RFC 1939) for the mail intake's poller: always inside TLS
// (pop3s, or STLS of RFC 2595 that must be offered), the server's certificate and name
// verified, messages listed with their UIDL and size so a too-large one is never downloaded,
// and retrieval bounded in memory. DELE only marks a message: the server removes what was
// marked when the session ends with QUIT, and a session that ends any other way removes
// nothing (RFC 1939 §6), which is what makes "delete only after commit" safe.
//
// Hand-written over Poco's sockets rather than Poco::Net::POP3ClientSession: that class has
// no UIDL, no STLS and no bound on what a retrieval may buffer.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace slmhub::mail {

struct Pop3Settings {
  std::string host = "127.0.0.1";
  int port = 995;
  // implicit: TLS from the first byte (pop3s, port 995). starttls: plain connection upgraded
  // with STLS (port 110); a server that does not offer STLS is refused before credentials are
  // sent. There is no plain-text mode: the password never travels in clear.
  enum class Tls { implicit, starttls } tls = Tls::implicit;
  std::string username, password;
  // A CA certificate file trusted besides the system's; verification cannot be turned off.
  std::string ca_file;
  int timeout_ms = 30000;  // for the connection and each read or write
};

// One message of the maildrop as listed at the start of a session.
struct Pop3Message {
  int number = 0;        // message number, valid for this session only
  std::string uid;       // UIDL: the server's stable id of the message (RFC 1939 §7)
  std::size_t size = 0;  // octets as the server counts them (LIST), CRLF line breaks
};

// A retrieval (POP3 here, IMAP too) that went past its byte limit. What was read is
// dropped and the session is still usable.
class MessageTooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A message the server would not give (RETR answered -ERR: another client removed it since
// the listing, the server cannot read it). The session is still usable.
class MessageRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Pop3Session;

class Pop3Client {
 public:
  // Throws std::invalid_argument for settings that could never work: an empty or spaced
  // host, a port outside 1-65535, a timeout <= 0, no username or password, a CA file that
  // cannot be read.
  explicit Pop3Client(Pop3Settings settings);
  ~Pop3Client();
  Pop3Client(const Pop3Client&) = delete;
  Pop3Client& operator=(const Pop3Client&) = delete;

  // Connects, secures the connection and logs in. Throws std::runtime_error naming the
  // server for refused or lost connections, timeouts, TLS and certificate failures, a server
  // without STLS when it is required, and refused credentials.
  std::unique_ptr<Pop3Session> open() const;

  const Pop3Settings& settings() const { return settings_; }

 private:
  struct Tls;
  Pop3Settings settings_;
  std::unique_ptr<Tls> tls_;
};

// One logged-in session (the TRANSACTION state). Not thread-safe. Every failure is a
// std::runtime_error naming the server and quoting its reply; after one (but MessageTooLarge
// and MessageRefused), the session should be dropped (destroying it closes the connection
// without QUIT: nothing is deleted).
class Pop3Session {
 public:
  ~Pop3Session();
  Pop3Session(const Pop3Session&) = delete;
  Pop3Session& operator=(const Pop3Session&) = delete;

  // Every message of the maildrop with its UIDL and size, in message-number order. Throws
  // when the server has no UIDL (its ids would not survive the session).
  std::vector<Pop3Message> list();

  // The message's bytes as the server sends them (CRLF line breaks, dot-stuffing undone).
  // Throws MessageTooLarge when it has more than `max_bytes`, without holding more than that,
  // and MessageRefused when the server answers -ERR.
  std::string retrieve(int number, std::size_t max_bytes);

  // Marks the message for deletion; it is removed only when quit() succeeds.
  void remove(int number);

  // Ends the session with QUIT: the server removes the marked messages, and a +OK says it did.
  void quit();

 private:
  friend class Pop3Client;
  class Connection;
  explicit Pop3Session(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> connection_;
};

}  // namespace slmhub::mail
