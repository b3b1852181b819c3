// Reading a mailbox over IMAP (RFC 3501) for the mail intake's poller, with libcurl: always
// inside TLS (imaps, or STARTTLS that must be offered), the server's certificate and name
// verified, messages listed with their UID and size before any is downloaded, and a message
// fetched without changing its flags, so only a commit decides what happens to it: \Seen, or
// removed (\Deleted and expunged, or moved to another folder).
//
// libcurl's own fetch asks for BODY[], which sets \Seen on a folder opened read-write, and its
// custom commands do not read literals, so the folder is opened read-only (EXAMINE) while
// messages are fetched and read-write (SELECT) only to flag or remove what was committed.
// UIDs are only meaningful with the folder's UIDVALIDITY: when it changes between listing and
// flagging, nothing is flagged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pop3.hpp"  // MessageTooLarge

namespace slmhub::mail {

struct ImapSettings {
  std::string host = "127.0.0.1";
  int port = 993;
  // implicit: TLS from the first byte (imaps, port 993). starttls: plain connection upgraded
  // with STARTTLS (port 143), refused when the server does not offer it. No plain-text mode.
  enum class Tls { implicit, starttls } tls = Tls::implicit;
  std::string username, password;
  // A CA certificate file trusted besides the system's; verification cannot be turned off.
  std::string ca_file;
  int timeout_ms = 30000;  // to connect, and for each server response
};

struct ImapMessage {
  std::uint32_t uid = 0;
  std::size_t size = 0;  // RFC822.SIZE: octets with CRLF line breaks
};

class ImapSession;

class ImapClient {
 public:
  // Throws std::invalid_argument for settings that could never work: an empty or spaced
  // host, a port outside 1-65535, a timeout <= 0, no username or password, a CA file that
  // cannot be read, or a libcurl without IMAP or OpenSSL.
  explicit ImapClient(ImapSettings settings);

  // Connects, logs in and opens `folder` read-only. Throws std::invalid_argument for a folder
  // name that cannot be sent (control characters, non-ASCII) and std::runtime_error naming the
  // server for refused or lost connections, timeouts, TLS and certificate failures, refused
  // credentials and a folder that cannot be opened.
  std::unique_ptr<ImapSession> open(const std::string& folder) const;

  const ImapSettings& settings() const { return settings_; }

 private:
  ImapSettings settings_;
};

// One logged-in connection with a folder open. Not thread-safe. Every failure is a
// std::runtime_error naming the server and quoting its reply.
class ImapSession {
 public:
  ~ImapSession();
  ImapSession(const ImapSession&) = delete;
  ImapSession& operator=(const ImapSession&) = delete;

  enum class Selection {
    unseen,     // neither \Seen nor \Deleted
    undeleted,  // not \Deleted, whether read or not
  };

  // The folder's UIDVALIDITY when it was opened.
  std::uint32_t uidvalidity() const;

  // The messages of the selection with their sizes, lowest UID (oldest) first, until
  // `max_count` of them are at most `max_bytes` large (those larger are listed too, and do not
  // count: a few messages too large to take must not hold back all newer mail); `total` (when
  // given) receives how many match in all.
  std::vector<ImapMessage> list(Selection selection, std::size_t max_count,
                                std::size_t* total = nullptr,
                                std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

  // The message's bytes (BODY[] of the folder opened read-only: its flags stay as they are);
  // nullopt when the folder no longer has it (another client expunged it since list()).
  // Throws MessageTooLarge past `max_bytes`, without holding more than that.
  std::optional<std::string> fetch(std::uint32_t uid, std::size_t max_bytes);

  // Flag \Seen; or \Deleted and expunge (only these UIDs when the server has UIDPLUS); or
  // move to `folder` (MOVE, else COPY, \Deleted and expunge). Each first reopens the folder
  // read-write and refuses to act when its UIDVALIDITY is no longer the one listed.
  void mark_seen(const std::vector<std::uint32_t>& uids);
  void remove(const std::vector<std::uint32_t>& uids);
  void move(const std::vector<std::uint32_t>& uids, const std::string& folder);

 private:
  friend class ImapClient;
  class Connection;
  explicit ImapSession(std::unique_ptr<Connection> connection);
  std::vector<ImapMessage> list_open(Selection selection, std::size_t max_count, std::size_t* total,
                                     std::size_t max_bytes);
  std::unique_ptr<Connection> connection_;
};

// Throws std::invalid_argument naming `what` when `folder` cannot be used as an IMAP folder
// name here: empty, control characters, or non-ASCII (modified UTF-7 is not spoken).
void check_imap_folder(const std::string& folder, const std::string& what);

}  // namespace slmhub::mail
