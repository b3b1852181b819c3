// E-mail intake (issue [email], DOMAIN.md §7): a message to a team address becomes a ticket
// with a case number and an automatic reply carrying it, or joins the ticket it answers.
// One transaction per message decides everything (the ticket or the ticket message, its
// attachments, the auto-reply in the outbox, the message's key), so a message is applied
// exactly once however often it is delivered, and what the MTA was told "250" is committed.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mime.hpp"
#include "slmhub/catalog.hpp"
#include "slmhub/events.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::email {

struct Queue {
  std::string name;     // the ticket queue: "db-requests"
  std::string prefix;   // of its case numbers: "DBR"
  std::string address;  // the team address, also the From of its replies
};

// "db-requests:DBR:db-requests@example.org" → a Queue; std::invalid_argument naming the
// item otherwise.
Queue parse_queue(const std::string& item);

struct IntakeSettings {
  std::vector<Queue> queues;
  // What our mail is sent from besides the queues' addresses (smtp.from): mail from it, or
  // with an X-Loop naming it, is ours coming back.
  std::vector<std::string> own_addresses;
  // A reply to a ticket from someone who is neither its requester nor a contact of its
  // customer: "new_ticket" (it starts its own) or "hold" (quarantined for review).
  std::string unknown_sender = "new_ticket";
  int autoreplies_per_sender_per_day = 5;
  // Subject words (whole words, case-insensitive) that make a new ticket an incident; each
  // form is listed ("error", "errors"), since "down" must not match "download".
  std::vector<std::string> incident_keywords = {
      "down",     "outage",    "outages",   "unavailable", "not working",
      "incident", "incidents", "emergency", "error",       "errors"};
  // The auto-reply's body: {{case}}, {{subject}}, {{queue}}, {{address}} are replaced.
  std::string autoreply_template =
      "Your message \"{{subject}}\" was received and is now case {{case}}.\n"
      "Please keep [{{case}}] in the subject of your replies.\n\n-- {{address}}\n";
};

struct IntakeResult {
  // ticket (a new one), reply (joined a ticket), bounce (recorded on a ticket), duplicate
  // (delivered before: nothing done), held or quarantined (kept whole, see `detail`).
  std::string outcome;
  std::string ticket;  // the case number, when there is one
  std::string detail;
  bool auto_replied = false;
};

// The envelope sender of a bounce (RFC 5321 null reverse-path). An empty envelope sender
// means "not known" (a message posted over HTTP without one), which is not a bounce.
inline constexpr const char* kNullSender = "<>";

// Why no automatic reply may go to this message (RFC 3834 and the usual signs of bulk or
// automated mail), or "" when one may.
std::string autoreply_refusal(const mail::ParsedMail& mail, const std::string& envelope_from,
                              const Queue& queue);

// Ticket priority (DOMAIN.md §7 matrix) from impact and urgency, each 1-3.
int priority_of(int impact, int urgency);

class MailIntake {
 public:
  MailIntake(Store& store, Catalog& catalog, Tickets& tickets, Outbox& outbox, const Clock& clock,
             Logger& log, IntakeSettings settings);

  static std::vector<Migration> migrations();
  // Declares each queue's case-number prefix to the host's ticket service.
  void declare_queues();

  const std::vector<Queue>& queues() const { return settings_.queues; }
  const Queue* queue_named(const std::string& name) const;
  const Queue* queue_for_address(const std::string& address) const;

  // Applies one message to `queue` and commits. `envelope_from`: the envelope sender,
  // kNullSender for a bounce, "" when not known. A message that makes processing fail is
  // quarantined whole with the reason (that is its result); only when even that cannot be
  // written does this throw, and the caller must answer "try again later".
  IntakeResult receive(const Queue& queue, const std::string& envelope_from,
                       const std::string& raw);

  // Quarantined and held messages, newest first, without their bytes.
  Json quarantine(const std::string& state) const;
  // The attachments of a ticket's mail in the order they arrived, without their bytes.
  Json attachments(const std::string& ticket) const;
  struct StoredAttachment {
    std::string name, content_type, bytes;
  };
  // One attachment with its bytes as they were sent (decoded); nullopt when there is none.
  std::optional<StoredAttachment> attachment(std::int64_t id) const;
  // Processes a quarantined message again (after a fix, or a held reply accepted by a
  // person: then an unknown sender joins the ticket anyway).
  IntakeResult replay(const Actor& actor, std::int64_t id);

 private:
  // What is known of a message before the transaction (parsing is done outside it, in the
  // delivering session's thread). Every member has an initializer, so prepare() names only
  // what it knows at construction.
  struct Prepared {
    const Queue* queue = nullptr;
    std::string envelope_from{};
    const std::string* raw = nullptr;
    mail::ParsedMail mail{};
    std::string key{};  // Message-ID or content hash: what makes it apply once
    std::string sender{};
    std::string subject{};    // on one line
    std::string refusal{};    // why no auto-reply, or ""
    std::string loop{};       // why it is our own mail come back, or ""
    std::string answer_to{};  // the requester of a new ticket, and its auto-reply's recipient
    std::string day{};        // for the per-sender auto-reply count
    std::string customer{};
    bool bounce = false;
    bool accept_unknown_sender = false;
    Instant now{};  // when it arrived (the first time, for a replay)
    // Worked out here so the group commit, which applies messages one after another, does
    // only what needs the transaction.
    std::string sha256{};                   // of the raw message
    std::string defects{};                  // JSON
    std::vector<std::string> thread_ids{};  // In-Reply-To, then References newest first
    // The ticket the subject's [PREFIX0000042] tag names, and the ticket synced with the
    // ServiceNow incident an INC number in the subject names (committed state: a message
    // cannot name a case number before its ticket's 250).
    std::optional<Ticket> tagged{};
    std::optional<Ticket> correlated{};
    std::string kind{};
    int priority = 0;
    std::string reply_subject{};  // the subject without Re:/Fwd: prefixes
  };
  Prepared prepare(const Queue& queue, const std::string& envelope_from, const std::string& raw,
                   bool accept_unknown_sender, Instant received);
  IntakeResult apply_in(Tx& tx, const Prepared& p);
  // Held messages go to the quarantine; everything else is logged.
  IntakeResult finish(const Prepared& p, IntakeResult out);
  // Through the host's group commit: messages delivered at the same time by several
  // sessions (and the server's other writes) share one transaction and one fsync; a message
  // that fails is retried on its own so it cannot take the others down with it.
  IntakeResult commit(const Prepared& p);
  const date::time_zone* provider_zone();
  IntakeResult quarantine_message(const Queue& queue, const std::string& envelope_from,
                                  const std::string& raw, const std::string& state,
                                  const std::string& reason);
  std::string customer_of(const std::string& address);
  // Whether `sender` may add to `ticket` by mail: its requester or a contact of its customer.
  bool may_write_to(const Ticket& ticket, const std::string& sender) const;

  Store& store_;
  Catalog& catalog_;
  Tickets& tickets_;
  Outbox& outbox_;
  const Clock& clock_;
  Logger& log_;
  IntakeSettings settings_;

  // Contact address → customer and contact domain → customer, read from the catalog at
  // most once a minute (a contact added shows up within that minute).
  std::mutex customers_mutex_;
  std::unordered_map<std::string, std::string> by_address_;
  std::unordered_map<std::string, std::string> by_domain_;
  std::optional<Instant> customers_read_at_;
  // The provider calendar's zone (the auto-reply cap's day), read at most once a minute.
  const date::time_zone* provider_zone_ = nullptr;
  std::optional<Instant> zone_read_at_;
};

}  // namespace slmhub::email
