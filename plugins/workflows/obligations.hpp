// Recurring obligations the university SLA puts on both sides (the seed SLA: "reviewed
// annually", "validate the developer accounts on a semi-annual basis", "anyone with database
// credentials will need to review (on an annual basis)" the use policy), as dated
// obligations in the host's deadline service:
// the annual review of each customer's SLA (the provider's service managers, with the
// customer's executive contacts), the semi-annual validation of contacts and developer
// accounts (the customer's primary technical contact), and the annual acknowledgement of the
// use policy by everyone holding credentials (each technical or security contact). Each cycle
// is a row; completing it records who and when and opens the next cycle. A customer whose
// contact validation is overdue is flagged: the SLA allows suspension.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

struct Obligation {
  std::string id;    // "OBL-000001"
  std::string kind;  // sla_review, contact_validation, use_policy
  std::string customer;
  std::string party;     // use_policy: the credential holder's address; otherwise ""
  std::string due_date;  // YYYY-MM-DD, provider calendar
  Instant due{};         // the end of that local day
  std::string state;     // open, done, withdrawn
  std::optional<Instant> completed_at;
  std::string completed_by;
  std::string note;
  Instant created_at{};
};

// `now` decides `overdue`.
Json obligation_json(const Obligation& obligation, Instant now);

class ObligationBook {
 public:
  ObligationBook(Store& store, Catalog& catalog, Deadlines& deadlines, const Clock& clock,
                 Logger& log);

  static std::vector<Migration> migrations();

  // Opens the first cycle of every obligation a customer's record implies and has none open
  // (a new customer, a new credential holder), due one period from today, and withdraws the
  // open ones nobody holds any more (a contact removed). Idempotent: the job runs daily.
  // Returns a one-line summary.
  std::string sync();

  // `customer` empty: every customer's. `kind`, `state` empty: any.
  std::vector<Obligation> list(const std::string& customer, const std::string& kind,
                               const std::string& state) const;
  std::optional<Obligation> find(const std::string& id) const;
  // Records who completed an open obligation and opens the next cycle, one period after
  // today. Conflict when it is not open.
  Obligation complete(const Actor& actor, const std::string& id, const std::string& note);
  // Customers whose contact validation is past due: {customer, obligation, due_date,
  // days_overdue}, oldest first.
  Json flagged() const;

 private:
  Store& store_;
  Catalog& catalog_;
  Deadlines& deadlines_;
  const Clock& clock_;
  Logger& log_;
};

}  // namespace slmhub::workflows
