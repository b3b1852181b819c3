#include "intake.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>

#include "address.hpp"
#include "compose.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::email {
namespace {

const Actor kSystem{"system:email_intake"};
// Attachment bytes go to the store in rows of this size (mail_attachment_chunks).
constexpr std::size_t kChunkBytes = 256 * 1024;
constexpr std::chrono::seconds kCustomersTtl{60};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// `phrase` in `text` as whole words, case-insensitively: "down" is in "Server down!", not in
// "Please enable CSV download" nor "Scheduled shutdown". Bytes of UTF-8 letters count as
// word characters, so a word never ends inside one.
bool has_words(const std::string& text, const std::string& phrase) {
  const std::string t = lower(text);
  const std::string w = lower(phrase);
  if (w.empty()) return false;
  auto word_char = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x80 || std::isalnum(u) != 0;
  };
  for (auto at = t.find(w); at != std::string::npos; at = t.find(w, at + 1)) {
    const bool starts = at == 0 || !word_char(t[at - 1]);
    const bool ends = at + w.size() == t.size() || !word_char(t[at + w.size()]);
    if (starts && ends) return true;
  }
  return false;
}

// A header's text on one line: an encoded word can decode to CR or LF (=0D=0A), and a
// subject that carried one would be refused in every reply written with it.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return text;
}

// A mailbox no person reads, so no automatic reply goes to it (RFC 3834 §2: owner-* and
// *-request are a list's; no-reply addresses say so themselves).
bool system_mailbox(const std::string& address) {
  const std::string a = lower(address);
  const std::string local = a.substr(0, a.rfind('@'));
  std::string bare;  // no-reply, noreply, no_reply, do-not-reply, donotreply ...: "noreply"
  for (const char c : local)
    if (c != '-' && c != '_' && c != '.') bare += c;
  return local == "mailer-daemon" || local == "postmaster" || local.starts_with("owner-") ||
         local.ends_with("-request") || bare == "noreply" || bare == "donotreply";
}

// The addresses an X-Loop header names: one or more, with or without angle brackets.
std::vector<std::string> loop_addresses(const std::string& value) {
  std::vector<std::string> out;
  std::string word;
  for (const char c : value + ",") {
    if (c == ',' || c == ';' || c == ' ' || c == '\t' || c == '<' || c == '>') {
      if (!word.empty()) out.push_back(lower(word));
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

std::string render(std::string text, const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [name, value] : vars) {
    const std::string tag = "{{" + name + "}}";
    for (auto at = text.find(tag); at != std::string::npos;
         at = text.find(tag, at + value.size())) {
      text.replace(at, tag.size(), value);
    }
  }
  return text;
}

// A Message-ID of ours: unique, and under the queue's domain so replies come back to it.
std::string new_message_id(const std::string& ticket, const Queue& queue) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
  return ticket + "." + suffix + "@" + std::string(mail::address_domain(queue.address));
}

// The subject scanners below are written out by hand: libstdc++'s std::regex matches by
// recursion, a frame per character, and a subject of 50,000 "Re:" (one hostile message) ran
// the stack out and killed the server, again at each redelivery.

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_letter(c) || is_digit(c) || c == '_'; }

// "Re: Fwd: AW: Restore" -> "Restore": the reply and forward prefixes of several languages.
std::string strip_reply_prefixes(const std::string& subject) {
  static const std::set<std::string> kPrefixes{"re", "fw", "fwd", "aw", "sv", "wg"};
  const auto skip_spaces = [&](std::size_t at) {
    while (at < subject.size() && is_space(subject[at])) ++at;
    return at;
  };
  std::size_t rest = 0;  // where the subject starts after the prefixes taken
  for (std::size_t at = skip_spaces(0);;) {
    std::size_t end = at;
    while (end < subject.size() && is_letter(subject[end]) && end - at < 3) ++end;
    const std::size_t colon = skip_spaces(end);
    if (colon >= subject.size() || subject[colon] != ':' ||
        !kPrefixes.contains(lower(subject.substr(at, end - at)))) {
      break;
    }
    at = rest = skip_spaces(colon + 1);
  }
  return subject.substr(rest);
}

// The case numbers in a subject, in order, upper-cased: "[DBR0000042]", "[dbr 0000042]",
// "[ DBR-0000042 ]" (2-10 letters, a space or hyphen perhaps, 7 digits).
std::vector<std::string> case_numbers(const std::string& subject) {
  std::vector<std::string> out;
  for (auto open = subject.find('['); open != std::string::npos;
       open = subject.find('[', open + 1)) {
    std::size_t at = open + 1;
    while (at < subject.size() && subject[at] == ' ') ++at;
    const std::size_t letters = at;
    while (at < subject.size() && is_letter(subject[at]) && at - letters < 11) ++at;
    const std::size_t letters_end = at;
    if (letters_end - letters < 2 || letters_end - letters > 10) continue;
    if (at < subject.size() && (subject[at] == ' ' || subject[at] == '-')) ++at;
    const std::size_t digits = at;
    while (at < subject.size() && is_digit(subject[at]) && at - digits < 8) ++at;
    if (at - digits != 7) continue;
    const std::size_t digits_end = at;
    while (at < subject.size() && subject[at] == ' ') ++at;
    if (at >= subject.size() || subject[at] != ']') continue;
    std::string number = subject.substr(letters, letters_end - letters) +
                         subject.substr(digits, digits_end - digits);
    std::transform(number.begin(), number.end(), number.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    out.push_back(std::move(number));
  }
  return out;
}

// The first ServiceNow incident number standing as a word: "INC0012345".
std::optional<std::string> incident_number(const std::string& subject) {
  for (auto at = subject.find("INC"); at != std::string::npos; at = subject.find("INC", at + 1)) {
    if (at > 0 && is_word(subject[at - 1])) continue;
    std::size_t end = at + 3;
    while (end < subject.size() && is_digit(subject[end]) && end - at < 11) ++end;
    if (end - at != 10 || (end < subject.size() && is_word(subject[end]))) continue;
    return subject.substr(at, 10);
  }
  return std::nullopt;
}

// Urgency from the sender's own marking (Importance, X-Priority, Priority), 2 when unmarked.
int urgency_of(const mail::ParsedMail& mail) {
  const std::string importance = lower(mail.header("importance"));
  const std::string priority = lower(mail.header("priority"));
  const std::string x_priority = mail.header("x-priority");
  if (importance == "high" || priority == "urgent" || x_priority.starts_with("1") ||
      x_priority.starts_with("2")) {
    return 1;
  }
  if (importance == "low" || priority == "non-urgent" || x_priority.starts_with("4") ||
      x_priority.starts_with("5")) {
    return 3;
  }
  return 2;
}

}  // namespace

Queue parse_queue(const std::string& item) {
  const auto first = item.find(':');
  const auto second = first == std::string::npos ? first : item.find(':', first + 1);
  if (second == std::string::npos) {
    throw std::invalid_argument("queue '" + item + "' is not name:PREFIX:address");
  }
  Queue q{item.substr(0, first), item.substr(first + 1, second - first - 1), ""};
  const auto address = mail::normalize_address(item.substr(second + 1));
  static const std::regex kPrefix("[A-Z]{2,10}");
  if (q.name.empty() || !std::regex_match(q.prefix, kPrefix) || !address) {
    throw std::invalid_argument("queue '" + item +
                                "' is not name:PREFIX:address (PREFIX: 2-10 capital letters)");
  }
  q.address = *address;
  return q;
}

int priority_of(int impact, int urgency) {
  // (1,1)=1; (1,2),(2,1)=2; (1,3),(2,2),(3,1)=3; (2,3),(3,2)=4; (3,3)=5.
  return std::clamp(impact, 1, 3) + std::clamp(urgency, 1, 3) - 1;
}

// Our own mail coming back: an X-Loop header we set names one of our addresses (a mailbox
// that redirects what it gets keeps the headers), or one of them sent it. Any of them, not
// only the receiving queue's: a first-response escalation goes out from the first queue's
// address, and sent to another queue it would be a ticket there that escalates in turn.
std::string loop_of(const mail::ParsedMail& mail, const std::string& sender, const Queue& queue,
                    const IntakeSettings& settings) {
  // Each of our addresses, and what it is ("" for the receiving queue's).
  std::vector<std::pair<std::string, std::string>> ours = {{queue.address, ""}};
  for (const auto& q : settings.queues) {
    if (q.name != queue.name) ours.emplace_back(q.address, "the address of queue " + q.name);
  }
  for (const auto& a : settings.own_addresses)
    ours.emplace_back(a, "the address slmhub sends from");
  for (const auto& [name, value] : mail.headers) {
    if (name != "x-loop") continue;
    const auto named = loop_addresses(value);
    for (const auto& [address, what] : ours) {
      if (std::find(named.begin(), named.end(), lower(address)) != named.end())
        return "X-Loop names " + address;
    }
  }
  for (const auto& [address, what] : ours) {
    if (lower(sender) != lower(address)) continue;
    return what.empty() ? "from the queue's own address" : "from " + address + ", " + what;
  }
  return {};
}

// A bounce names the message it returns in a part of its own: the returned headers (RFC 6522
// text/rfc822-headers, RFC 6533 message/global-headers) or the whole message (message/rfc822).
// Postfix's and Exim's DSNs carry no In-Reply-To or References, and their subject no case
// number: the returned Message-ID (our auto-reply's, our answer's) is what finds the ticket.
void add_returned_message_ids(const mail::ParsedMail& mail, std::vector<std::string>& ids) {
  constexpr std::size_t kHeadBytes = 64 * 1024;  // the header block; a whole message may be large
  for (const auto& part : mail.attachments) {
    if (part.content_type != "text/rfc822-headers" && part.content_type != "message/rfc822" &&
        part.content_type != "message/global-headers" && part.content_type != "message/global") {
      continue;
    }
    std::string head;
    part.read([&](std::string_view piece) {
      head.append(piece.substr(0, kHeadBytes - std::min(kHeadBytes, head.size())));
    });
    if (const auto end = head.find("\r\n\r\n"); end != std::string::npos) head.resize(end);
    if (const auto end = head.find("\n\n"); end != std::string::npos) head.resize(end);
    if (head.empty()) continue;
    const std::string id = mail::parse_mail(head + "\r\n\r\n").message_id;
    if (!id.empty()) ids.push_back(id);
  }
}

std::string autoreply_refusal(const mail::ParsedMail& mail, const std::string& envelope_from) {
  const std::string auto_submitted = lower(mail.header("auto-submitted"));
  if (!auto_submitted.empty() && auto_submitted != "no") {
    return "Auto-Submitted: " + auto_submitted + " (RFC 3834)";
  }
  const std::string precedence = lower(mail.header("precedence"));
  if (precedence == "bulk" || precedence == "junk" || precedence == "list") {
    return "Precedence: " + precedence;
  }
  if (!mail.header("x-auto-response-suppress").empty()) {
    return "X-Auto-Response-Suppress: " + mail.header("x-auto-response-suppress");
  }
  if (!mail.header("list-id").empty()) return "mailing-list mail (List-Id)";
  if (mail.return_path && mail.return_path->empty()) return "empty Return-Path (a bounce)";
  if (envelope_from == kNullSender) return "empty envelope sender (a bounce)";
  if (mail.is_report) return "a delivery or read report (multipart/report)";
  if (system_mailbox(mail.from_address)) return "from " + mail.from_address;
  if (mail.from_address.empty()) return "no sender address";
  return {};
}

MailIntake::MailIntake(Store& store, Catalog& catalog, Tickets& tickets, Outbox& outbox,
                       const Clock& clock, Logger& log, IntakeSettings settings)
    : store_(store),
      catalog_(catalog),
      tickets_(tickets),
      outbox_(outbox),
      clock_(clock),
      log_(log),
      settings_(std::move(settings)) {}

std::vector<Migration> MailIntake::migrations() {
  return {{1, "mail intake: applied messages, threads, attachments, auto-reply counts, quarantine",
           "CREATE TABLE mail_messages(key TEXT PRIMARY KEY, queue TEXT NOT NULL, "
           "outcome TEXT NOT NULL, ticket TEXT, sender TEXT NOT NULL, subject TEXT NOT NULL, "
           "html TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL, "
           "defects TEXT NOT NULL, received_at BIGINT NOT NULL);"
           "CREATE TABLE mail_threads(message_id TEXT PRIMARY KEY, ticket TEXT NOT NULL);"
           "CREATE TABLE mail_attachments(id {{serial}}, ticket TEXT NOT NULL, "
           "message_key TEXT NOT NULL, name TEXT NOT NULL, content_type TEXT NOT NULL, "
           "content_id TEXT NOT NULL, is_inline BIGINT NOT NULL, size BIGINT NOT NULL, "
           "sha256 TEXT NOT NULL, content TEXT NOT NULL);"
           "CREATE INDEX mail_attachments_ticket ON mail_attachments(ticket);"
           "CREATE TABLE mail_autoreplies(sender TEXT NOT NULL, day TEXT NOT NULL, "
           "count BIGINT NOT NULL, PRIMARY KEY(sender, day));"
           "CREATE TABLE mail_quarantine(id {{serial}}, queue TEXT NOT NULL, "
           "envelope_from TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, "
           "size BIGINT NOT NULL, sha256 TEXT NOT NULL, raw TEXT NOT NULL, "
           "received_at BIGINT NOT NULL, replayed_at BIGINT, result TEXT);"
           "CREATE INDEX mail_quarantine_state ON mail_quarantine(state, id)"},
          // Attachment bytes as they are (BLOB / bytea) in rows of kChunkBytes, written as
          // they are decoded: a 20 MB attachment is never held whole, nor as base64 text.
          // Rows stored before keep their base64 `content`, and no chunks.
          {2, "mail intake: attachment bytes stored in chunks",
           "CREATE TABLE mail_attachment_chunks(attachment BIGINT NOT NULL, "
           "seq BIGINT NOT NULL, data {{blob}} NOT NULL, PRIMARY KEY(attachment, seq))"},
          // A message to two team addresses is delivered to each queue and opens a ticket in
          // each: applied once per queue (it was once in all, and the second queue dropped it
          // as a duplicate), and its Message-ID threads to each of those tickets.
          {3, "mail intake: a message applied once per queue",
           "CREATE TABLE mail_messages_v3(key TEXT NOT NULL, queue TEXT NOT NULL, "
           "outcome TEXT NOT NULL, ticket TEXT, sender TEXT NOT NULL, subject TEXT NOT NULL, "
           "html TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL, "
           "defects TEXT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY(queue, key));"
           "INSERT INTO mail_messages_v3(key, queue, outcome, ticket, sender, subject, html, size, "
           "sha256, defects, received_at) SELECT key, queue, outcome, ticket, sender, subject, "
           "html, size, sha256, defects, received_at FROM mail_messages;"
           "DROP TABLE mail_messages;"
           "ALTER TABLE mail_messages_v3 RENAME TO mail_messages;"
           "CREATE INDEX mail_messages_ticket ON mail_messages(ticket, key);"
           "CREATE TABLE mail_threads_v3(message_id TEXT NOT NULL, ticket TEXT NOT NULL, "
           "PRIMARY KEY(message_id, ticket));"
           "INSERT INTO mail_threads_v3(message_id, ticket) SELECT message_id, ticket "
           "FROM mail_threads;"
           "DROP TABLE mail_threads;"
           "ALTER TABLE mail_threads_v3 RENAME TO mail_threads"},
          // A message kept in quarantine and delivered again is found there by its bytes.
          {4, "mail intake: quarantined messages found by their bytes",
           "CREATE INDEX mail_quarantine_sha256 ON mail_quarantine(queue, sha256)"}};
}

void MailIntake::declare_queues() {
  store_.transact([&](Tx& tx) {
    for (const auto& q : settings_.queues) tickets_.define_queue(tx, q.name, q.prefix);
  });
}

const Queue* MailIntake::queue_named(const std::string& name) const {
  for (const auto& q : settings_.queues) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

const Queue* MailIntake::queue_for_address(const std::string& address) const {
  const auto normalized = mail::normalize_address(address);
  if (!normalized) return nullptr;
  for (const auto& q : settings_.queues) {
    if (q.address == *normalized) return &q;
  }
  return nullptr;
}

std::string MailIntake::customer_of(const std::string& address) {
  std::lock_guard lock(customers_mutex_);
  const Instant now = clock_.now();
  if (!customers_read_at_ || now - *customers_read_at_ >= kCustomersTtl) {
    by_address_.clear();
    by_domain_.clear();
    std::unordered_map<std::string, int> domain_owners;
    for (const auto& c : catalog_.snapshot().customers) {
      for (const auto& contact : c.contacts) {
        const auto a = mail::normalize_address(contact.email);
        if (!a) continue;
        by_address_[*a] = c.id;
        const std::string domain(mail::address_domain(*a));
        if (by_domain_.emplace(domain, c.id).second) {
          domain_owners[domain] = 1;
        } else if (by_domain_[domain] != c.id) {
          domain_owners[domain] = 2;  // shared by two customers: says nothing
        }
      }
    }
    for (const auto& [domain, owners] : domain_owners) {
      if (owners > 1) by_domain_.erase(domain);
    }
    customers_read_at_ = now;
  }
  if (auto it = by_address_.find(address); it != by_address_.end()) return it->second;
  if (auto it = by_domain_.find(std::string(mail::address_domain(address)));
      it != by_domain_.end()) {
    return it->second;
  }
  return {};
}

const date::time_zone* MailIntake::provider_zone() {
  std::lock_guard lock(customers_mutex_);
  const Instant now = clock_.now();
  if (!provider_zone_ || !zone_read_at_ || now - *zone_read_at_ >= kCustomersTtl) {
    provider_zone_ = catalog_.provider_calendar().zone();
    zone_read_at_ = now;
  }
  return provider_zone_;
}

IntakeResult MailIntake::receive(const Queue& queue, const std::string& envelope_from,
                                 const std::string& raw) {
  try {
    const Prepared p = prepare(queue, envelope_from, raw, false, clock_.now());
    return finish(p, commit(p));
  } catch (const std::exception& e) {
    // A store that is busy or down (503) is no fault of the message: nothing is kept, and the
    // delivery fails so that it comes again (LMTP 451, mailgate 75, left in the polled
    // mailbox). Kept in quarantine, it was acknowledged and then waited for a replay by hand.
    if (const auto* problem = dynamic_cast<const Problem*>(&e); problem && problem->status() == 503)
      throw;
    // Logged once it is kept: when the quarantine cannot be written either, the delivery
    // fails (the MTA retries) and its own log line says so.
    IntakeResult kept = quarantine_message(queue, envelope_from, raw, "quarantined", e.what());
    log_.error("mail for " + queue.name + " from " + envelope_from +
               " could not be processed and is kept as " + kept.detail);
    return kept;
  }
}

IntakeResult MailIntake::quarantine_message(const Queue& queue, const std::string& envelope_from,
                                            const std::string& raw, const std::string& state,
                                            const std::string& reason) {
  IntakeResult out;
  const std::string sha256 = sha256_hex(raw);
  store_.transact([&](Tx& tx) {
    out = {state, "", reason, false};
    // Delivered again while it waits for review (a poll after a crash, a mailgate retry after
    // a timeout): one entry, as a message applied is applied once.
    const auto waiting = tx.query(
        "SELECT id FROM mail_quarantine WHERE queue = ? AND sha256 = ? AND state IN ('held', "
        "'quarantined') ORDER BY id",
        {queue.name, sha256});
    if (!waiting.empty()) {
      out = {"duplicate", "", "already in quarantine as #" + std::to_string(waiting[0].integer(0)),
             false};
      return;
    }
    auto rows = tx.query(
        "INSERT INTO mail_quarantine(queue, envelope_from, state, reason, size, sha256, raw, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        {queue.name, envelope_from, state, reason, static_cast<std::int64_t>(raw.size()), sha256,
         base64_encode(raw), to_epoch(clock_.now())});
    out.detail = "quarantine #" + std::to_string(rows.at(0).integer(0)) + ": " + reason;
  });
  return out;
}

MailIntake::Prepared MailIntake::prepare(const Queue& queue, const std::string& envelope_from,
                                         const std::string& raw, bool accept_unknown_sender,
                                         Instant received) {
  Prepared p{.queue = &queue,
             .envelope_from = envelope_from,
             .raw = &raw,
             .mail = mail::parse_mail_borrowing(raw),
             .accept_unknown_sender = accept_unknown_sender,
             .now = received,
             .sha256 = sha256_hex(raw)};
  const mail::ParsedMail& mail = p.mail;
  p.key = mail.message_id.empty() ? "sha256:" + p.sha256 : "id:" + mail.message_id;
  p.sender = mail.from_address.empty() ? mail::normalize_address(envelope_from).value_or("")
                                       : mail.from_address;
  p.refusal = autoreply_refusal(mail, envelope_from);
  p.loop = loop_of(mail, p.sender, queue, settings_);
  if (p.refusal.empty()) p.refusal = p.loop;
  p.bounce = mail.is_report || (mail.return_path && mail.return_path->empty()) ||
             envelope_from == kNullSender || lower(p.sender).starts_with("mailer-daemon@");
  // Whom we answer: Reply-To (a web form or a list that sends for a person names them there),
  // unless it names one of our queues or a system mailbox (the answer would come back as
  // mail, or bounce) or cannot be written as an envelope address; else the sender.
  p.answer_to = !mail.reply_to.empty() && !queue_for_address(mail.reply_to) &&
                        !system_mailbox(mail.reply_to) && mail::is_plain_address(mail.reply_to)
                    ? mail.reply_to
                    : p.sender;
  // An answer we could not address (not a plain ASCII address: SMTPUTF8 is not spoken) or
  // nobody reads would be a dead letter or a bounce: the ticket says no reply went out.
  if (p.refusal.empty() && !mail::is_plain_address(p.answer_to))
    p.refusal = p.answer_to + " cannot be written as an envelope address";
  if (p.refusal.empty() && system_mailbox(p.answer_to)) p.refusal = "to " + p.answer_to;
  p.day = format_date(local_date(clock_.now(), provider_zone()));
  if (!p.bounce) {
    p.customer = customer_of(p.sender);
    if (p.customer.empty() && p.answer_to != p.sender) p.customer = customer_of(p.answer_to);
  }
  p.defects = Json(mail.defects).dump();
  p.subject = one_line(mail.subject);
  p.thread_ids = mail.in_reply_to;
  p.thread_ids.insert(p.thread_ids.end(), mail.references.rbegin(), mail.references.rend());
  if (p.bounce) add_returned_message_ids(mail, p.thread_ids);
  // The first case number of a ticket we have, in any case ("[dbr0000042]") and as people
  // retype it ("[DBR 0000042]"): another helpdesk's tag may come first ("Re: [SR0012345]
  // Re: [DBR0000042] ...").
  for (const auto& number : case_numbers(p.subject)) {
    p.tagged = tickets_.find_fields(number);
    if (p.tagged) break;
  }
  if (!p.tagged) {
    if (const auto incident = incident_number(p.subject))
      p.correlated = tickets_.find_by_external_ref(*incident);
  }
  const bool incident =
      std::any_of(settings_.incident_keywords.begin(), settings_.incident_keywords.end(),
                  [&](const std::string& k) { return has_words(p.subject, k); });
  p.kind = incident ? "incident" : "service_request";
  // Impact: an incident is taken as medium impact, a request as low, until a person rates
  // it; urgency is the sender's own marking.
  p.priority = priority_of(incident ? 2 : 3, urgency_of(mail));
  p.reply_subject = strip_reply_prefixes(p.subject);
  return p;
}

bool MailIntake::may_write_to(const Ticket& ticket, const std::string& sender) const {
  if (lower(ticket.requester) == lower(sender)) return true;
  if (ticket.customer.empty()) return false;
  const auto c = catalog_.customer(ticket.customer);
  if (!c) return false;
  return std::any_of(c->contacts.begin(), c->contacts.end(), [&](const Contact& contact) {
    return mail::normalize_address(contact.email) == lower(sender);
  });
}

IntakeResult MailIntake::apply_in(Tx& tx, const Prepared& p) {
  const Queue& queue = *p.queue;
  const mail::ParsedMail& mail = p.mail;
  const std::string& key = p.key;
  const std::string& sender = p.sender;
  IntakeResult out;
  // Delivered to this queue before (a retry, a second poller): the first delivery's effect
  // stands. A message to two team addresses is one delivery for each queue.
  auto seen = tx.query("SELECT outcome, ticket FROM mail_messages WHERE queue = ? AND key = ?",
                       {queue.name, key});
  if (!seen.empty()) {
    out = {"duplicate", seen[0].optional_text(1).value_or(""),
           "already applied as " + seen[0].text(0), false};
    return out;
  }
  // Our own mail back (a requester's mailbox redirecting our auto-reply to the queue): not a
  // request, and a ticket for it would answer the queue itself. Held; a person replaying it
  // puts it on the ticket it answers.
  if (!p.loop.empty() && !p.accept_unknown_sender) {
    out = {"held", "", "our own mail came back (" + p.loop + ")", false};
    return out;
  }

  // Which ticket it answers: our Message-IDs first, then the case number in the subject. A
  // ServiceNow notification about an incident synced with one of our tickets ([servicenow]
  // puts the INC number in external_ref) belongs to that ticket: a new ticket would answer
  // it, and the two helpdesks would write to each other about their own case numbers.
  // A message the thread shares with a ticket of this queue answers that ticket: mail sent to
  // two team addresses opened a ticket in each, and a reply to all goes on in each. Of the
  // tickets it could answer, in that order, it goes on the first the sender may write to: a
  // reply to all in a thread where someone else was given a ticket of their own names that
  // ticket first, and the requester's own further on.
  std::vector<Ticket> candidates;
  {
    std::vector<Ticket> elsewhere;
    std::set<std::string> seen_tickets;
    for (const auto& id : p.thread_ids) {
      for (const auto& row :
           tx.query("SELECT ticket FROM mail_threads WHERE message_id = ? ORDER BY ticket", {id})) {
        if (!seen_tickets.insert(row.text(0)).second) continue;
        auto ticket = tickets_.find_fields(row.text(0));
        if (!ticket) continue;
        (ticket->queue == queue.name ? candidates : elsewhere).push_back(std::move(*ticket));
      }
    }
    for (auto& t : elsewhere) candidates.push_back(std::move(t));
    if (p.tagged && seen_tickets.insert(p.tagged->id).second) candidates.push_back(*p.tagged);
  }
  // An INC number joins the instance's notifications to the ticket whoever sends them, but
  // not a message from a contact of another customer, who quoted it in a request of their own.
  const bool correlated = candidates.empty() && p.correlated &&
                          (p.customer.empty() || p.customer == p.correlated->customer);
  if (correlated) candidates.push_back(*p.correlated);
  std::optional<Ticket> existing;
  for (auto& candidate : candidates) {
    if (p.bounce || p.accept_unknown_sender || correlated || may_write_to(candidate, sender)) {
      existing = std::move(candidate);
      break;
    }
  }
  if (!existing && !candidates.empty() && settings_.unknown_sender == "hold") {
    out = {"held", candidates.front().id,
           sender + " is neither the requester of " + candidates.front().id +
               " nor a contact of its customer: held for review",
           false};
    return out;
  }  // else a new ticket of its own

  if (p.bounce && !existing) {
    out = {"held", "", "a bounce or report that answers no known ticket", false};
    return out;
  }

  if (existing) {
    // The same message through another queue (addressed to both, it names a ticket of one):
    // on the ticket once.
    if (!tx.query("SELECT 1 FROM mail_messages WHERE ticket = ? AND key = ?", {existing->id, key})
             .empty()) {
      out = {"duplicate", existing->id, "already on " + existing->id + " through another queue",
             false};
      return out;
    }
    tickets_.add_message(
        tx, kSystem, existing->id,
        {0, "in", p.bounce ? "bounce:" + sender : sender, mail.text, mail.message_id, p.now});
    out = {p.bounce ? "bounce" : "reply", existing->id, "", false};
  } else {
    Ticket t;
    t.queue = queue.name;
    t.subject = p.subject.empty() ? "(no subject)" : p.subject;
    t.kind = p.kind;
    t.priority = p.priority;
    t.customer = p.customer;
    t.requester = p.answer_to;  // who may answer it, and whom we answer
    t.created_at = p.now;       // its arrival, also when it is replayed later
    t.messages.push_back({0, "in", sender, mail.text, mail.message_id, p.now});
    const Ticket created = tickets_.create(tx, kSystem, std::move(t));
    out = {"ticket", created.id, "", false};
  }
  const std::string& case_number = out.ticket;
  if (!mail.message_id.empty()) {
    tx.exec("INSERT INTO mail_threads(message_id, ticket) VALUES (?, ?) ON CONFLICT DO NOTHING",
            {mail.message_id, case_number});
  }
  for (const auto& a : mail.attachments) {
    const std::int64_t id =
        tx.query(
              "INSERT INTO mail_attachments(ticket, message_key, name, content_type, content_id, "
              "is_inline, size, sha256, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '') RETURNING id",
              {case_number, key, a.filename, a.content_type, a.content_id,
               std::int64_t{a.is_inline ? 1 : 0}, static_cast<std::int64_t>(a.size), a.sha256})
            .at(0)
            .integer(0);
    std::int64_t seq = 0;
    std::string chunk;
    chunk.reserve(kChunkBytes);
    auto flush = [&] {
      tx.exec("INSERT INTO mail_attachment_chunks(attachment, seq, data) VALUES (?, ?, ?)",
              {id, seq++, chunk});
      chunk.clear();
    };
    a.read([&](std::string_view piece) {
      while (!piece.empty()) {
        const std::size_t take = std::min(piece.size(), kChunkBytes - chunk.size());
        chunk.append(piece.substr(0, take));
        piece.remove_prefix(take);
        if (chunk.size() == kChunkBytes) flush();
      }
    });
    if (!chunk.empty()) flush();
  }
  tx.exec(
      "INSERT INTO mail_messages(key, queue, outcome, ticket, sender, subject, html, size, "
      "sha256, defects, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {key, queue.name, out.outcome, case_number, sender, p.subject, mail.html,
       static_cast<std::int64_t>(p.raw->size()), p.sha256, p.defects, to_epoch(p.now)});

  // The automatic reply, for a new ticket only, never to automated mail, and at most so
  // many per sender and day (a loop with a system we did not recognise ends there).
  if (out.outcome != "ticket") return out;
  // Why not is on the ticket, for staff (a note): the requester has no case number from us.
  const auto no_autoreply = [&](const std::string& why) {
    out.detail = "no auto-reply: " + why;
    tickets_.add_message(
        tx, kSystem, case_number,
        {0, "note", kSystem.id, "No automatic reply was sent: " + why + ".", "", p.now});
    return out;
  };
  if (!p.refusal.empty()) return no_autoreply(p.refusal);
  const std::string& to = p.answer_to;
  const auto count =
      tx.query(
            "INSERT INTO mail_autoreplies(sender, day, count) VALUES (?, ?, 1) "
            "ON CONFLICT(sender, day) DO UPDATE SET count = mail_autoreplies.count + 1 "
            "RETURNING count",
            {to, p.day})
          .at(0)
          .integer(0);
  if (count > settings_.autoreplies_per_sender_per_day) {
    return no_autoreply(to + " got " + std::to_string(settings_.autoreplies_per_sender_per_day) +
                        " today already");
  }
  const std::string reply_id = new_message_id(case_number, queue);
  tx.exec("INSERT INTO mail_threads(message_id, ticket) VALUES (?, ?)", {reply_id, case_number});
  Json headers = {{"From", queue.address},
                  {"Message-ID", "<" + reply_id + ">"},
                  {"Auto-Submitted", "auto-replied"},
                  {"X-Loop", queue.address}};
  // An id that cannot be written back (spaces, 8-bit bytes) is left out, not sent to fail.
  if (mail::is_message_id(mail.message_id)) {
    headers["In-Reply-To"] = "<" + mail.message_id + ">";
    headers["References"] = "<" + mail.message_id + ">";
  }
  outbox_.enqueue(tx, {0, "email", to, "[" + case_number + "] " + p.reply_subject,
                       render(settings_.autoreply_template, {{"case", case_number},
                                                             {"subject", p.reply_subject},
                                                             {"queue", queue.name},
                                                             {"address", queue.address}}),
                       headers, "autoreply/" + queue.name + "/" + key});
  out.auto_replied = true;
  return out;
}

IntakeResult MailIntake::finish(const Prepared& p, IntakeResult out) {
  if (out.outcome == "held") {
    return quarantine_message(*p.queue, p.envelope_from, *p.raw, "held", out.detail);
  }
  if (out.outcome != "duplicate") {
    log_.info("mail from " + p.sender + " to " + p.queue->name + ": " + out.outcome +
              (out.ticket.empty() ? "" : " " + out.ticket) +
              (out.detail.empty() ? "" : " (" + out.detail + ")"));
  }
  return out;
}

IntakeResult MailIntake::commit(const Prepared& p) {
  IntakeResult out;
  store_.transact_grouped([&](Tx& tx) { out = apply_in(tx, p); });
  return out;
}

Json MailIntake::attachments(const std::string& ticket) const {
  Json out = Json::array();
  for (const auto& r :
       store_.query("SELECT id, name, content_type, content_id, is_inline, size, sha256 "
                    "FROM mail_attachments WHERE ticket = ? ORDER BY id",
                    {ticket})) {
    out.push_back({{"id", r.integer(0)},
                   {"name", r.text(1)},
                   {"content_type", r.text(2)},
                   {"content_id", r.text(3)},
                   {"inline", r.integer(4) != 0},
                   {"size", r.integer(5)},
                   {"sha256", r.text(6)}});
  }
  return out;
}

std::optional<MailIntake::StoredAttachment> MailIntake::attachment(std::int64_t id) const {
  const auto rows = store_.query(
      "SELECT name, content_type, content, size FROM mail_attachments WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  StoredAttachment a{rows[0].text(0), rows[0].text(1), {}};
  a.bytes.reserve(static_cast<std::size_t>(rows[0].integer(3)));
  for (const auto& r : store_.query(
           "SELECT data FROM mail_attachment_chunks WHERE attachment = ? ORDER BY seq", {id})) {
    a.bytes += r.text(0);
  }
  // Stored before the chunks (mail intake migration 2): base64 in the row itself.
  if (a.bytes.empty() && !rows[0].text(2).empty()) a.bytes = base64_decode(rows[0].text(2));
  return a;
}

Json MailIntake::quarantine(const std::string& state) const {
  Params params;
  std::string sql =
      "SELECT id, queue, envelope_from, state, reason, size, sha256, received_at, replayed_at, "
      "result FROM mail_quarantine";
  if (!state.empty()) {
    sql += " WHERE state = ?";
    params.emplace_back(state);
  }
  Json out = Json::array();
  for (const auto& r : store_.query(sql + " ORDER BY id DESC", params)) {
    out.push_back({{"id", r.integer(0)},
                   {"queue", r.text(1)},
                   {"envelope_from", r.text(2)},
                   {"state", r.text(3)},
                   {"reason", r.text(4)},
                   {"size", r.integer(5)},
                   {"sha256", r.text(6)},
                   {"received_at", format_instant(from_epoch(r.integer(7)))},
                   {"replayed_at", r.optional_integer(8)
                                       ? Json(format_instant(from_epoch(*r.optional_integer(8))))
                                       : Json()},
                   {"result", r.optional_text(9) ? Json::parse(*r.optional_text(9)) : Json()}});
  }
  return out;
}

IntakeResult MailIntake::replay(const Actor& actor, std::int64_t id) {
  auto rows = store_.query(
      "SELECT queue, envelope_from, state, raw, received_at FROM mail_quarantine WHERE id = ?",
      {id});
  if (rows.empty()) throw NotFound("no quarantined message #" + std::to_string(id));
  const std::string state = rows[0].text(2);
  if (state == "replayed") {
    throw Conflict("quarantined message #" + std::to_string(id) + " was replayed already");
  }
  const Queue* queue = queue_named(rows[0].text(0));
  if (!queue) {
    throw Conflict("queue '" + rows[0].text(0) + "' of message #" + std::to_string(id) +
                   " is not configured any more");
  }
  const std::string raw = base64_decode(rows[0].text(3));
  // A held message is replayed because a person accepted its sender; a quarantined one
  // because the cause was fixed: if it fails again, it stays where it is.
  // Either way, a failed replay changes nothing: the message stays, under its own number.
  IntakeResult result;
  std::optional<Prepared> p;
  try {
    p.emplace(
        prepare(*queue, rows[0].text(1), raw, state == "held", from_epoch(rows[0].integer(4))));
    store_.transact([&](Tx& tx) { result = apply_in(tx, *p); });
  } catch (const std::exception& e) {
    throw Conflict("replaying message #" + std::to_string(id) + " failed again: " + e.what());
  }
  if (result.outcome == "held" && state == "quarantined") {
    // Its cause is fixed, and now it waits for a person like any held message: held, so that
    // replaying it again accepts its sender (a quarantined row is never replayed as held).
    result.detail = "held now: " + result.detail + "; replay it again to accept its sender";
    store_.transact([&](Tx& tx) {
      tx.exec("UPDATE mail_quarantine SET state = 'held', reason = ? WHERE id = ?",
              {result.detail, id});
      catalog_.audit(tx, actor, "hold", "mail_quarantine", std::to_string(id), {{"state", state}},
                     {{"state", "held"}, {"reason", result.detail}});
    });
    return result;
  }
  if (result.outcome == "held") {
    throw Conflict("message #" + std::to_string(id) + " is still held: " + result.detail);
  }
  finish(*p, result);
  const Json result_json = {{"outcome", result.outcome},
                            {"ticket", result.ticket},
                            {"detail", result.detail},
                            {"by", actor.id}};
  store_.transact([&](Tx& tx) {
    tx.exec(
        "UPDATE mail_quarantine SET state = 'replayed', replayed_at = ?, result = ? WHERE id = ?",
        {to_epoch(clock_.now()), result_json.dump(), id});
    catalog_.audit(tx, actor, "replay", "mail_quarantine", std::to_string(id), {{"state", state}},
                   {{"state", "replayed"}, {"outcome", result.outcome}, {"ticket", result.ticket}});
  });
  return result;
}

}  // namespace slmhub::email
