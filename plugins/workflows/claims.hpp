// What a customer can claim (DOMAIN.md §5): a single-customer credit request for downtime the
// report missed, filed within 60 calendar days of the end of the incident's month and
// reviewed within 30 calendar days of receipt, with slmhub's own measurement beside the
// claim; and a dispute of an issued credit's amount, filed within 30 calendar days of
// receiving it, escalated level 1 → 2 → 3 and resolved with an adjustment and an outcome
// e-mail to the customer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "credits.hpp"
#include "documents.hpp"
#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

struct CreditRequest {
  std::string id;  // "CRQ-000001"
  std::string customer;
  std::string service;
  Json incidents;      // ["INC0004", ...]
  Json billing_codes;  // as the customer gave them
  std::int64_t claimed_seconds = 0;
  std::string notes;
  std::string reply_to;  // an address to answer besides the customer's contacts; may be ""
  std::string filed_by;  // the actor
  Instant received_at{};
  std::string review_due_date;  // 30 calendar days after receipt, provider calendar
  Instant review_due{};
  std::string state;  // received, accepted, denied
  Json evidence;      // slmhub's measurement of the same incidents for this customer
  Json decision;      // {"credit", "credit_cents"} or {"reason"}; null while received
  Json steps;
  Instant updated_at{};
  std::vector<Attachment> documents;
};

struct Dispute {
  std::string id;  // "DSP-000001"
  std::string credit;
  std::string customer;
  int level = 1;      // 1 working group, 2 next level of management, 3 deputy directors
  std::string state;  // open, closed
  std::string basis;
  std::string supporting_information;
  std::string reply_to;
  std::string filed_by;
  Instant filed_at{};
  std::string window_closes;  // the last day it could be filed
  Json resolution;            // {"credit_cents", "outcome", "level", "adjusted"} once closed
  Json steps;                 // {"filed": ..., "escalated": [...], "resolved": ...}
  Instant updated_at{};
  std::vector<Attachment> documents;  // supporting documents, then the outcome e-mail
};

Json request_json(const CreditRequest& request);
Json dispute_json(const Dispute& dispute);

// slmhub's measurement of `incidents` for `customer` on `service`, month by month, from the
// availability engine over `dataset` (open interruptions and a month under way measured to
// `now`): the seconds each incident counted and whether it hit the customer, the service's
// figures, the customer's downtime, excess and computed credit. Unknown incidents are
// skipped (the caller validated them).
Json measure_claim(const Dataset& dataset, const std::string& customer, const std::string& service,
                   const std::vector<std::string>& incidents, std::int64_t claimed_seconds,
                   Instant now);

// Who may file, and for whom: a customer token files only for its own customer; staff file on
// a customer's behalf with the role service_manager.
struct Filer {
  Actor actor;
  std::string customer;  // the token's own customer; "" for staff
  bool staff = false;
};

class ClaimBook {
 public:
  ClaimBook(Store& store, Catalog& catalog, Events& events, Outbox& outbox, Deadlines& deadlines,
            CreditBook& credits, Attachments& attachments, const Clock& clock, Logger& log);

  static std::vector<Migration> migrations();

  // Files a request from its JSON body (DESIGN.md §5.2 problem responses: 400 for the format,
  // 403 for another customer, 422 for a rule such as the 60-day window, naming the deadline).
  CreditRequest file_request(const Filer& filer, const Json& body);
  std::vector<CreditRequest> requests(const std::string& customer, const std::string& state) const;
  std::optional<CreditRequest> request(const std::string& id) const;
  // received → accepted: a pending credit of `credit_cents` (default: the measured credit).
  CreditRequest accept(const Actor& actor, const std::string& id, std::optional<std::int64_t> cents,
                       const std::string& notes);
  // received → denied: the reason is e-mailed to the customer.
  CreditRequest deny(const Actor& actor, const std::string& id, const std::string& reason);

  Dispute file_dispute(const Filer& filer, const Json& body);
  std::vector<Dispute> disputes(const std::string& customer, const std::string& state) const;
  std::optional<Dispute> dispute(const std::string& id) const;
  Dispute escalate(const Actor& actor, const std::string& id, const std::string& reason);
  // Closes the dispute at its current level with `cents` as the credit's amount (an
  // adjustment when it changed) and e-mails the outcome, attached to the dispute. Levels 1
  // and 2 are the service managers' (`is_manager`), level 3 the deputy directors'
  // (`is_approver`): a deputy director need not also be a service manager.
  Dispute resolve(const Actor& actor, bool is_manager, bool is_approver, const std::string& id,
                  std::int64_t cents, const std::string& outcome);

  Attachments& attachments() { return attachments_; }

 private:
  std::vector<std::string> customer_addresses(const std::string& customer,
                                              const std::string& reply_to) const;

  Store& store_;
  Catalog& catalog_;
  Events& events_;
  Outbox& outbox_;
  Deadlines& deadlines_;
  CreditBook& credits_;
  Attachments& attachments_;
  const Clock& clock_;
  Logger& log_;
};

}  // namespace slmhub::workflows
