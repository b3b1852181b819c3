// SLA credits (DOMAIN.md §5): the multi-customer "SLA Credit" work order opened for each
// service a published availability report shows as missed, and the credits themselves, from
// a work order or from an accepted single-customer request, pending until the deputy
// director (role `approver`) approves them. An approved credit is `credit.approved` for
// billing; a dispute's new amount is `credit.adjusted`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

struct Credit {
  std::string id;  // the origin's id and the customer: "WO:2026-11:oracle-prod:library"
  std::string customer;
  std::string service;
  std::string month;  // YYYY-MM of the incidents
  std::string billing_code;
  std::int64_t amount_cents = 0;     // what is owed now, after any adjustment
  std::int64_t original_cents = 0;   // as the work order or the review set it
  Json incidents;                    // ["INC0002", ...]
  std::string origin;                // "work_order" or "credit_request"
  std::string origin_id;             // the work order's or the request's id
  std::string state;                 // pending, approved, withdrawn
  std::optional<Instant> issued_at;  // when approved: the customer's receipt, for disputes
  Json adjustments;                  // [{dispute, before_cents, after_cents, delta_cents, at, by}]
  Json steps;
  Instant created_at{};
  Instant updated_at{};
  Json maintenance = Json::array();  // the maintenance windows that counted: ["CHG0002"]
};

struct WorkOrder {
  std::string id;  // "WO:2026-11:oracle-prod"
  std::string month;
  std::string service;
  std::int64_t revision = 0;  // of the report it was opened from
  std::string state;          // open, approved, withdrawn
  std::string due_date;       // 15 business days after the report's publication
  Instant due{};
  Json form;  // the agency credit form: incidents, service, seconds above the SLA, customers
  Json steps;
  Instant created_at{};
  Instant updated_at{};
};

Json credit_json(const Credit& credit);
Json work_order_json(const WorkOrder& work_order);

class CreditBook {
 public:
  CreditBook(Store& store, Catalog& catalog, Events& events, Deadlines& deadlines,
             const Clock& clock, Logger& log);

  static std::vector<Migration> migrations();

  // Subscribes "workflows.credit-work-orders" to `report.published`.
  void subscribe();

  // Opens one work order per missed service of a `report.published` payload, with one
  // pending credit per impacted customer. A later revision of the same month updates the
  // open work orders (and withdraws those of services that no longer miss); an approved
  // one stands. Repeated delivery changes nothing. Returns the work orders opened or changed.
  std::vector<WorkOrder> open_work_orders(const Json& published);

  std::vector<WorkOrder> work_orders(const std::string& state, const std::string& month) const;
  std::optional<WorkOrder> work_order(const std::string& id) const;
  // open → approved (role approver): approves each of its credits (`credit.approved`).
  WorkOrder approve_work_order(const Actor& actor, const std::string& id);

  // `customer` empty: every customer's.
  std::vector<Credit> credits(const std::string& customer, const std::string& state) const;
  std::optional<Credit> credit(const std::string& id) const;
  Credit require_credit(Tx& tx, const std::string& id) const;
  // pending → approved for a credit of an accepted request; a work order's credits are
  // approved with their work order.
  Credit approve_credit(const Actor& actor, const std::string& id);
  // pending → withdrawn for a credit of an accepted request the approver will not approve,
  // with the reason. The month's open work order, which counted it as credited already,
  // credits the customer that amount again; once that work order is approved the credit
  // can no longer be withdrawn (Conflict).
  Credit withdraw_credit(const Actor& actor, const std::string& id, const std::string& reason);

  // A new pending credit (an accepted request), in the caller's transaction.
  void add_credit(Tx& tx, const Actor& actor, const Credit& credit);
  // Sets an approved credit's amount after a dispute: records the adjustment and writes
  // `credit.adjusted` when the amount changes. Returns the credit as it is now.
  Credit adjust(Tx& tx, const Actor& actor, const std::string& id, std::int64_t cents,
                const std::string& dispute);

 private:
  void approve_in(Tx& tx, const Actor& actor, Credit& credit, Instant now);
  // Stores the pending credit of one customer of work order `w` (`entry`, from its form):
  // its credit_cents less what is credited already. Returns that amount; nothing is stored
  // when it is not above zero.
  std::int64_t put_order_credit(Tx& tx, const WorkOrder& w, const Json& entry, Instant now);

  Store& store_;
  Catalog& catalog_;
  Events& events_;
  Deadlines& deadlines_;
  const Clock& clock_;
  Logger& log_;
};

}  // namespace slmhub::workflows
