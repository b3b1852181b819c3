// Polling a POP3 or IMAP mailbox into the mail intake (docs/email.md, "Three ways in"): each
// message is fetched, handed to a commit callback (the intake's receive), and only once that
// says it is durably applied is it deleted (POP3, IMAP), flagged \Seen or moved (IMAP). A
// crash between the commit and the delete leaves the message on the server, and the next
// poll offers it again; the intake knows it by Message-ID or content hash and answers
// "duplicate", so nothing is applied twice and nothing is lost. A message larger than the
// limit is never downloaded: it stays on the server and the poll reports it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "slmhub/log.hpp"

namespace slmhub::mail {
class ImapClient;
class Pop3Client;
}  // namespace slmhub::mail

namespace slmhub::email {

struct MailboxSettings {
  enum class Protocol { pop3, imap } protocol = Protocol::imap;
  std::string host;
  int port = 993;
  // implicit: TLS from the first byte (pop3s 995, imaps 993); starttls: STLS / STARTTLS on the
  // plain port (110, 143), refused when the server does not offer it.
  enum class Tls { implicit, starttls } tls = Tls::implicit;
  std::string username;
  std::string password;
  std::string folder = "INBOX";  // IMAP only
  // What happens to a committed message: mark_seen (IMAP: \Seen, it stays; polls take the
  // unseen ones), remove (POP3 DELE; IMAP \Deleted and expunged) or move (IMAP, to move_to).
  enum class AfterCommit { mark_seen, remove, move } after_commit = AfterCommit::mark_seen;
  std::string move_to;
  std::string queue;    // the intake queue the messages feed
  std::string ca_file;  // trusted besides the system's CAs; verification is always on
  std::size_t max_message_bytes = std::size_t{50} << 20;
  std::size_t max_messages_per_poll = 500;  // the rest wait for the next poll
  int timeout_ms = 30000;
};

// "imaps://intake@mail.example.org:993/INBOX" (never the password), for logs and job records.
std::string describe(const MailboxSettings& settings);

// Looks a secret up by name (Host::secrets().get); nullopt when it is not set.
using SecretLookup = std::function<std::optional<std::string>(const std::string& name)>;

// A mailbox from its configuration text:
//
//   imaps://intake%40example.org@mail.example.org/INBOX?queue=db-requests&secret=db_mailbox
//   pop3s://intake@mail.example.org?queue=db-requests&secret=db_mailbox
//
// Scheme pop3s or imaps (implicit TLS, ports 995 and 993) or pop3 or imap (STARTTLS, ports 110
// and 143; tls=implicit overrides); the user (percent-encoded) is required; the IMAP folder is
// the path (default INBOX), and POP3 takes no path. Parameters: queue (required), secret (the
// name of the secret holding the password; required, as a password in the URL is refused),
// mode (flag, delete or move; IMAP default flag, POP3 only delete), move_to (the folder for
// mode=move), tls (implicit or starttls), and ca_file, max_message_bytes, max_messages,
// timeout_ms to override `defaults`. Throws std::invalid_argument naming the mailbox (its
// password never) and the problem.
MailboxSettings parse_mailbox(const std::string& url, const SecretLookup& secret,
                              const MailboxSettings& defaults = {});

class MailboxPoller {
 public:
  // Returns true once the message is durably applied. False or an exception leaves the
  // message on the server for the next poll (and is logged).
  using Commit = std::function<bool(const std::string& raw)>;

  // Checks the settings now (std::invalid_argument), so a bad mailbox fails at start-up.
  // `log` must outlive the poller.
  MailboxPoller(MailboxSettings settings, Logger& log);
  ~MailboxPoller();
  MailboxPoller(const MailboxPoller&) = delete;
  MailboxPoller& operator=(const MailboxPoller&) = delete;

  // One poll: at most max_messages_per_poll messages, oldest first, one at a time in memory.
  // Returns the summary for the job record: "3 fetched, 2 committed, 1 failed, 0 too large"
  // (plus "; N more wait for the next poll" when the limit cut the poll short). Throws
  // std::runtime_error, with the summary so far, when the mailbox cannot be reached or the
  // connection breaks; what was committed by then is deleted or flagged if the connection
  // still allows, else it comes again as a duplicate. A poll started while another is still
  // running returns at once, saying so.
  std::string poll(const Commit& commit);

  const MailboxSettings& settings() const { return settings_; }

 private:
  struct Counts;
  void poll_pop3(const Commit& commit, Counts& counts);
  void poll_imap(const Commit& commit, Counts& counts);
  bool apply(const Commit& commit, const std::string& raw, const std::string& which,
             Counts& counts);
  bool fits(std::size_t size, const std::string& which, Counts& counts);
  void larger_than_listed(const std::string& which, std::size_t listed, Counts& counts);

  MailboxSettings settings_;
  std::string name_;  // describe(settings_)
  Logger& log_;
  std::unique_ptr<mail::Pop3Client> pop3_;
  std::unique_ptr<mail::ImapClient> imap_;
  std::mutex running_;
};

}  // namespace slmhub::email
