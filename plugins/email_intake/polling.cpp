#include "polling.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "imap.hpp"
#include "pop3.hpp"
#include "slmhub/json.hpp"

namespace slmhub::email {
namespace {

using Protocol = MailboxSettings::Protocol;
using Tls = MailboxSettings::Tls;
using AfterCommit = MailboxSettings::AfterCommit;

std::string scheme_of(const MailboxSettings& s) {
  const bool pop3 = s.protocol == Protocol::pop3;
  if (s.tls == Tls::implicit) return pop3 ? "pop3s" : "imaps";
  return pop3 ? "pop3" : "imap";
}

int default_port(Protocol protocol, Tls tls) {
  if (protocol == Protocol::pop3) return tls == Tls::implicit ? 995 : 110;
  return tls == Tls::implicit ? 993 : 143;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

template <typename Number>
std::optional<Number> parse_positive(std::string_view text) {
  Number value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

// The URL as it may be shown in an error: quoted, printable characters only, cut when very
// long, and a password in the user part replaced, never echoed.
std::string shown(std::string_view url) {
  std::string text(url);
  const auto scheme_end = text.find("://");
  if (scheme_end != std::string::npos) {
    const auto authority = scheme_end + 3;
    const auto authority_end = std::min(text.find_first_of("/?#", authority), text.size());
    const auto at = text.rfind('@', authority_end);
    const auto colon = text.find(':', authority);
    if (at != std::string::npos && at >= authority && colon < at) {
      text = text.substr(0, colon) + ":***" + text.substr(at);
    }
  }
  constexpr std::size_t kMaxShown = 200;
  std::string out = "'";
  for (const char c : text.substr(0, kMaxShown)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7F ? c : '?';
  }
  return out + (text.size() > kMaxShown ? "...'" : "'");
}

[[noreturn]] void refuse(const std::string& where, const std::string& problem) {
  throw std::invalid_argument(where + ": " + problem);
}

}  // namespace

std::string describe(const MailboxSettings& s) {
  const bool ipv6 = s.host.find(':') != std::string::npos;
  std::string text = scheme_of(s) + "://" + s.username + "@" +
                     (ipv6 ? "[" + s.host + "]" : s.host) + ":" + std::to_string(s.port);
  if (s.protocol == Protocol::imap) text += "/" + s.folder;
  return text;
}

MailboxSettings parse_mailbox(const std::string& url, const SecretLookup& secret,
                              const MailboxSettings& defaults) {
  const std::string where = "mailbox " + shown(url);
  MailboxSettings s = defaults;

  const auto scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme == "pop3s" || scheme == "pop3") {
    s.protocol = Protocol::pop3;
  } else if (scheme == "imaps" || scheme == "imap") {
    s.protocol = Protocol::imap;
  } else {
    refuse(where, "must start with pop3s://, imaps://, pop3:// or imap://");
  }
  const bool implicit_scheme = scheme.back() == 's';
  s.tls = implicit_scheme ? Tls::implicit : Tls::starttls;

  std::string_view rest(url);
  rest.remove_prefix(scheme_end + 3);
  const auto query_at = rest.find('?');
  const std::string_view query =
      query_at == std::string_view::npos ? "" : rest.substr(query_at + 1);
  rest = rest.substr(0, query_at);
  if (rest.find('#') != std::string_view::npos) {
    refuse(where, "a fragment (#...) has no meaning here");
  }
  const auto path_at = rest.find('/');
  const std::string_view authority = rest.substr(0, path_at);
  const std::string_view path = path_at == std::string_view::npos ? "" : rest.substr(path_at + 1);

  // user@host:port
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos || at == 0) {
    refuse(where, "names no user; write " + scheme + "://USER@HOST (an @ in the user is %40)");
  }
  const std::string_view user = authority.substr(0, at);
  if (user.find(':') != std::string_view::npos) {
    refuse(where,
           "holds a password; passwords stay out of configuration files: name a secret with "
           "secret=NAME");
  }
  const auto username = percent_decode(user);
  if (!username || username->empty()) refuse(where, "has a malformed user part");
  s.username = *username;
  std::string_view host_port = authority.substr(at + 1);
  std::string_view port_text;
  if (host_port.starts_with('[')) {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos) refuse(where, "has an unclosed [ in its host");
    s.host = std::string(host_port.substr(1, close - 1));
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) refuse(where, "has text after its [host]");
    port_text = after.empty() ? "" : after.substr(1);
  } else {
    const auto colon = host_port.find(':');
    s.host = std::string(host_port.substr(0, colon));
    port_text = colon == std::string_view::npos ? "" : host_port.substr(colon + 1);
  }
  if (s.host.empty()) refuse(where, "names no host");
  std::optional<int> port;
  if (!port_text.empty()) {
    port = parse_positive<int>(port_text);
    if (!port || *port > 65535) refuse(where, "port " + quote_text(port_text) + " is not 1-65535");
  }

  // The path: the IMAP folder.
  if (s.protocol == Protocol::pop3) {
    if (!path.empty()) {
      refuse(where, "POP3 has one mailbox per user and no folders; remove the path");
    }
  } else if (!path.empty()) {
    const auto folder = percent_decode(path);
    if (!folder) refuse(where, "has a malformed folder " + quote_text(path));
    s.folder = *folder;
  }

  // The parameters.
  std::map<std::string, std::string> params;
  static constexpr std::array<std::string_view, 9> kKnown = {
      "queue",        "secret",    "mode", "move_to", "tls", "ca_file", "max_message_bytes",
      "max_messages", "timeout_ms"};
  std::size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view item = query.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const auto equals = item.find('=');
    const auto name = percent_decode(item.substr(0, equals));
    const auto value =
        percent_decode(equals == std::string_view::npos ? "" : item.substr(equals + 1));
    if (!name || !value) refuse(where, "has a malformed parameter " + quote_text(item));
    if (std::find(kKnown.begin(), kKnown.end(), *name) == kKnown.end()) {
      std::string known;
      for (const auto k : kKnown) known += (known.empty() ? "" : ", ") + std::string(k);
      refuse(where, "has an unknown parameter " + quote_text(*name) + " (known: " + known + ")");
    }
    if (!params.emplace(*name, *value).second) {
      refuse(where, "gives " + quote_text(*name) + " twice");
    }
  }
  const auto param = [&](const std::string& name) -> std::optional<std::string> {
    const auto found = params.find(name);
    if (found == params.end()) return std::nullopt;
    return found->second;
  };

  if (const auto tls = param("tls")) {
    if (*tls == "implicit") {
      s.tls = Tls::implicit;
    } else if (*tls == "starttls") {
      if (implicit_scheme) {
        refuse(where, "tls=starttls contradicts " + scheme +
                          "://, which is TLS from the first byte; use " +
                          scheme.substr(0, scheme.size() - 1) + "://");
      }
      s.tls = Tls::starttls;
    } else {
      refuse(where, "tls must be implicit or starttls, not " + quote_text(*tls) +
                        " (there is no unencrypted mode: the password would travel in clear)");
    }
  }
  s.port = port ? *port : default_port(s.protocol, s.tls);

  const auto queue = param("queue");
  if (!queue || queue->empty()) {
    refuse(where, "names no queue; add queue=NAME, a queue of this plugin");
  }
  s.queue = *queue;

  const auto secret_name = param("secret");
  if (!secret_name || secret_name->empty()) {
    refuse(where,
           "names no password secret; add secret=NAME and set secrets.NAME.file or "
           "SLMHUB_SECRET_NAME");
  }
  const auto password = secret(*secret_name);
  if (!password || password->empty()) {
    refuse(where, "its password secret " + quote_text(*secret_name) + " is not set (secrets." +
                      *secret_name + ".file or the SLMHUB_SECRET_ environment variable)");
  }
  s.password = *password;

  const std::string mode = param("mode").value_or(s.protocol == Protocol::pop3 ? "delete" : "flag");
  if (mode == "flag") {
    if (s.protocol == Protocol::pop3) {
      refuse(where,
             "POP3 has no flags to mark a message done: polled POP3 mail is deleted once "
             "committed (mode=delete), or use IMAP to keep it");
    }
    s.after_commit = AfterCommit::mark_seen;
  } else if (mode == "delete") {
    s.after_commit = AfterCommit::remove;
  } else if (mode == "move") {
    if (s.protocol == Protocol::pop3) {
      refuse(where, "POP3 has no folders to move to; use mode=delete");
    }
    s.after_commit = AfterCommit::move;
  } else {
    refuse(where, "mode must be flag, delete or move, not " + quote_text(mode));
  }
  if (const auto move_to = param("move_to")) {
    if (s.after_commit != AfterCommit::move) refuse(where, "move_to is only for mode=move");
    s.move_to = *move_to;
  }
  if (s.after_commit == AfterCommit::move) {
    if (s.move_to.empty()) refuse(where, "mode=move needs move_to=FOLDER");
    if (s.move_to == s.folder) refuse(where, "move_to is the polled folder itself");
  }

  if (const auto ca_file = param("ca_file")) s.ca_file = *ca_file;
  if (const auto text = param("max_message_bytes")) {
    const auto value = parse_positive<std::size_t>(*text);
    if (!value) {
      refuse(where, "max_message_bytes must be a positive number, not " + quote_text(*text));
    }
    s.max_message_bytes = *value;
  }
  if (const auto text = param("max_messages")) {
    const auto value = parse_positive<std::size_t>(*text);
    if (!value) refuse(where, "max_messages must be a positive number, not " + quote_text(*text));
    s.max_messages_per_poll = *value;
  }
  if (const auto text = param("timeout_ms")) {
    const auto value = parse_positive<int>(*text);
    if (!value) refuse(where, "timeout_ms must be a positive number, not " + quote_text(*text));
    s.timeout_ms = *value;
  }
  return s;
}

struct MailboxPoller::Counts {
  std::size_t fetched = 0, committed = 0, failed = 0, too_large = 0, waiting = 0;

  std::string summary() const {
    std::string text = std::to_string(fetched) + " fetched, " + std::to_string(committed) +
                       " committed, " + std::to_string(failed) + " failed, " +
                       std::to_string(too_large) + " too large";
    if (waiting > 0) text += "; " + std::to_string(waiting) + " more wait for the next poll";
    return text;
  }
};

MailboxPoller::MailboxPoller(MailboxSettings settings, Logger& log)
    : settings_(std::move(settings)), name_(describe(settings_)), log_(log) {
  const auto invalid = [&](const std::string& problem) {
    throw std::invalid_argument("mailbox " + name_ + ": " + problem);
  };
  if (settings_.max_message_bytes == 0) invalid("max_message_bytes must be positive");
  if (settings_.max_messages_per_poll == 0) invalid("max_messages_per_poll must be positive");
  if (settings_.queue.empty()) invalid("no queue is named");
  if (settings_.protocol == Protocol::pop3) {
    if (settings_.after_commit != AfterCommit::remove) {
      invalid("POP3 can only delete committed messages (after_commit remove)");
    }
    mail::Pop3Settings pop3;
    pop3.host = settings_.host;
    pop3.port = settings_.port;
    pop3.tls = settings_.tls == Tls::implicit ? mail::Pop3Settings::Tls::implicit
                                              : mail::Pop3Settings::Tls::starttls;
    pop3.username = settings_.username;
    pop3.password = settings_.password;
    pop3.ca_file = settings_.ca_file;
    pop3.timeout_ms = settings_.timeout_ms;
    pop3_ = std::make_unique<mail::Pop3Client>(std::move(pop3));
    return;
  }
  mail::check_imap_folder(settings_.folder, "mailbox " + name_);
  if (settings_.after_commit == AfterCommit::move) {
    mail::check_imap_folder(settings_.move_to, "mailbox " + name_ + " move_to");
  }
  mail::ImapSettings imap;
  imap.host = settings_.host;
  imap.port = settings_.port;
  imap.tls = settings_.tls == Tls::implicit ? mail::ImapSettings::Tls::implicit
                                            : mail::ImapSettings::Tls::starttls;
  imap.username = settings_.username;
  imap.password = settings_.password;
  imap.ca_file = settings_.ca_file;
  imap.timeout_ms = settings_.timeout_ms;
  imap_ = std::make_unique<mail::ImapClient>(std::move(imap));
}

MailboxPoller::~MailboxPoller() = default;

std::string MailboxPoller::poll(const Commit& commit) {
  const std::unique_lock lock(running_, std::try_to_lock);
  if (!lock.owns_lock()) return "skipped: the previous poll of " + name_ + " is still running";
  Counts counts;
  try {
    if (pop3_) {
      poll_pop3(commit, counts);
    } else {
      poll_imap(commit, counts);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(name_ + ": " + counts.summary() + "; stopped: " + e.what());
  }
  if (counts.fetched > 0 || counts.too_large > 0) log_.info(name_ + ": " + counts.summary());
  return counts.summary();
}

bool MailboxPoller::fits(std::size_t size, const std::string& which, Counts& counts) {
  if (size <= settings_.max_message_bytes) return true;
  ++counts.too_large;
  log_.warning(name_ + ": " + which + " has " + std::to_string(size) +
               " bytes, more than max_message_bytes (" +
               std::to_string(settings_.max_message_bytes) +
               "); it stays on the server until the limit is raised or it is removed there");
  return false;
}

void MailboxPoller::larger_than_listed(const std::string& which, std::size_t listed,
                                       Counts& counts) {
  ++counts.too_large;
  log_.warning(name_ + ": " + which + " was listed with " + std::to_string(listed) +
               " bytes but has more than max_message_bytes (" +
               std::to_string(settings_.max_message_bytes) +
               "); it stays on the server until the limit is raised or it is removed there");
}

bool MailboxPoller::apply(const Commit& commit, const std::string& raw, const std::string& which,
                          Counts& counts) {
  ++counts.fetched;
  std::string why;
  try {
    if (commit(raw)) {
      ++counts.committed;
      return true;
    }
    why = "the intake did not commit it";
  } catch (const std::exception& e) {
    why = e.what();
  }
  ++counts.failed;
  log_.warning(name_ + ": " + which + " (" + std::to_string(raw.size()) +
               " bytes) was not committed and stays on the server for the next poll: " + why);
  return false;
}

void MailboxPoller::poll_pop3(const Commit& commit, Counts& counts) {
  auto session = pop3_->open();
  const auto listed = session->list();
  // Messages too large to take do not count towards the poll's share, or a few of them at
  // the front of the mailbox would hold back all newer mail.
  std::size_t next = 0;
  std::string stopped;
  try {
    for (std::size_t taken = 0; next < listed.size() && taken < settings_.max_messages_per_poll;) {
      const auto& message = listed[next++];
      const std::string which = "message " + message.uid;
      if (!fits(message.size, which, counts)) continue;
      ++taken;
      std::string raw;
      try {
        raw = session->retrieve(message.number, settings_.max_message_bytes);
      } catch (const mail::MessageTooLarge&) {
        larger_than_listed(which, message.size, counts);
        continue;
      } catch (const mail::MessageRefused& e) {
        // One message the server will not give must not hold back the others.
        ++counts.failed;
        log_.warning(name_ + ": " + which + " was not retrieved: " + e.what());
        continue;
      }
      // DELE only marks it; the server removes it at QUIT, after every commit of this poll.
      if (apply(commit, raw, which, counts)) session->remove(message.number);
    }
  } catch (const std::exception& e) {
    // QUIT still, so what was committed so far is removed and does not come again.
    stopped = e.what();
  }
  counts.waiting = listed.size() - next;
  try {
    session->quit();
  } catch (const std::exception& e) {
    if (stopped.empty()) throw;
    stopped += std::string("; then, at QUIT: ") + e.what();
  }
  if (!stopped.empty()) throw std::runtime_error(stopped);
}

void MailboxPoller::poll_imap(const Commit& commit, Counts& counts) {
  auto session = imap_->open(settings_.folder);
  const auto selection = settings_.after_commit == AfterCommit::mark_seen
                             ? mail::ImapSession::Selection::unseen
                             : mail::ImapSession::Selection::undeleted;
  std::size_t total = 0;
  const auto listed = session->list(selection, settings_.max_messages_per_poll, &total,
                                    settings_.max_message_bytes);
  counts.waiting = total > listed.size() ? total - listed.size() : 0;
  std::vector<std::uint32_t> committed;
  std::string stopped;
  for (const auto& message : listed) {
    const std::string which = "message UID " + std::to_string(message.uid);
    if (!fits(message.size, which, counts)) continue;
    std::optional<std::string> raw;
    try {
      raw = session->fetch(message.uid, settings_.max_message_bytes);
    } catch (const mail::MessageTooLarge&) {
      larger_than_listed(which, message.size, counts);
      continue;
    } catch (const std::exception& e) {
      // What was committed so far is still flagged below, so it does not come again.
      stopped = e.what();
      break;
    }
    if (!raw) continue;  // another poller took it since the listing
    if (apply(commit, *raw, which, counts)) committed.push_back(message.uid);
  }
  try {
    switch (settings_.after_commit) {
      case AfterCommit::mark_seen:
        session->mark_seen(committed);
        break;
      case AfterCommit::remove:
        session->remove(committed);
        break;
      case AfterCommit::move:
        session->move(committed, settings_.move_to);
        break;
    }
  } catch (const std::exception& e) {
    if (stopped.empty()) throw;
    stopped += std::string("; then, marking the committed messages done: ") + e.what();
  }
  if (!stopped.empty()) throw std::runtime_error(stopped);
}

}  // namespace slmhub::email
