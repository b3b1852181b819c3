// A real Dovecot serving POP3 and IMAP for tests of the mail pollers (DESIGN.md §6): Debian's
// dovecot-pop3d and dovecot-imapd started with their own configuration (dovecot.conf.in) in a
// temp directory, listening on 127.0.0.1 and free ports: pop3s and imaps with implicit TLS,
// pop3 and imap in clear offering STLS/STARTTLS, on a freshly generated self-signed
// certificate. One user with a passwd-file password; its mail is a Maildir++ in the temp
// directory that the test fills and inspects directly, as an MTA's local delivery and a
// mail administrator would. Stopped, and the directory removed, when the object dies; the
// server is also stopped if the test process dies (PR_SET_PDEATHSIG). Tests fail (never
// skip) when Dovecot or openssl is missing.
//
// Run as root (CI), Dovecot's own processes use the `dovecot` and `dovenull` users the
// package creates and the mail belongs to `nobody`; otherwise everything runs as the caller.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "certificate.hpp"

namespace slmhub::test {

struct DovecotOptions {
  // The name the certificate is issued for (an IP address becomes an iPAddress entry).
  std::string certificate_name = "127.0.0.1";
  std::string username = "intake";
  std::string password = "poll-secret-42";
};

class Dovecot {
 public:
  // Starts the server and waits until every listener accepts connections; throws
  // std::runtime_error with Dovecot's log when it cannot.
  explicit Dovecot(const DovecotOptions& options = {});
  ~Dovecot();
  Dovecot(const Dovecot&) = delete;
  Dovecot& operator=(const Dovecot&) = delete;

  int pop3s_port() const { return pop3s_port_; }  // implicit TLS
  int pop3_port() const { return pop3_port_; }    // clear, offers STLS
  int imaps_port() const { return imaps_port_; }  // implicit TLS
  int imap_port() const { return imap_port_; }    // clear, offers STARTTLS
  // The server's certificate, to be trusted as the CA.
  std::string ca_file() const { return certificate_.certificate.string(); }
  const std::string& username() const { return options_.username; }
  const std::string& password() const { return options_.password; }

  // Writes a message into the folder's new/ (through tmp/, as maildir delivery does) and
  // returns its maildir name, the key for flags(). "INBOX" is the maildir itself; another
  // folder is created when missing. With `flags` (maildir letters: "S" is \Seen) it goes to
  // cur/ carrying them, as if a mail client had already been there.
  std::string deliver(const std::string& raw, const std::string& folder = "INBOX",
                      const std::optional<std::string>& flags = std::nullopt);
  // Creates an empty folder (Maildir++ ".name") the server will see.
  void create_folder(const std::string& folder);
  // Messages in the folder (new/ and cur/), whatever their flags.
  std::size_t count(const std::string& folder = "INBOX") const;
  // The bytes of each message in the folder, in file-name order.
  std::vector<std::string> contents(const std::string& folder = "INBOX") const;
  // The maildir flags of message `name` as Dovecot keeps them in the file name, sorted
  // letters: "" none, "S" \Seen, "T" \Deleted ("ST" both); nullopt when the folder no longer
  // has it.
  std::optional<std::string> flags(const std::string& name,
                                   const std::string& folder = "INBOX") const;

  // Deletes message `name`'s file, as another client's expunge would, without telling the
  // server: a session that listed it is refused it (RETR -ERR). Throws when it is not there.
  void remove(const std::string& name, const std::string& folder = "INBOX");

  // Disconnects every session of the user (`doveadm kick`), as a server restart or an idle
  // timeout would; throws std::runtime_error when doveadm fails.
  void kick();
  // Kills the user's POP3 and IMAP session processes outright (SIGKILL): the connections
  // close with no goodbye, as when the server crashes. Returns once they are gone.
  void kill_sessions();

  // The tail of Dovecot's log, for failure messages.
  std::string log() const;

 private:
  std::filesystem::path maildir(const std::string& folder) const;
  void make_maildir(const std::filesystem::path& path) const;
  void give_to_mail_user(const std::filesystem::path& path) const;
  void stop() noexcept;

  DovecotOptions options_;
  std::filesystem::path dir_;
  Certificate certificate_;
  uid_t mail_uid_ = 0;
  gid_t mail_gid_ = 0;
  bool as_root_ = false;
  pid_t pid_ = -1;
  int pop3s_port_ = 0, pop3_port_ = 0, imaps_port_ = 0, imap_port_ = 0;
};

}  // namespace slmhub::test
