// The host's deadline service (SDK Deadlines): every dated obligation a plugin registers,
// one watch that warns the owner role ahead of each (`deadline.due`, once) and escalates
// each missed one (`deadline.missed`, once), in the provider's business days and, unless
// configured otherwise, only during its business hours, and the list behind
// GET /api/v1/deadlines. The event and an e-mail notice per recipient (through the outbox)
// are written in the same transaction as the deadline's new state.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/log.hpp"
#include "storage/database.hpp"

namespace slmhub::host {

struct DeadlineSettings {
  int warn_business_days = 3;                  // deadlines.warn_business_days
  bool notify_outside_business_hours = false;  // deadlines.notify_outside_business_hours
  // Owner role -> addresses told about the deadlines that role owns (deadlines.notify.<role>).
  std::map<std::string, std::vector<std::string>> notify{};
  // Addresses told about every missed deadline, whoever owns it (deadlines.escalate).
  std::vector<std::string> escalate{};
};

class DeadlineStore : public Deadlines {
 public:
  // Notices go to `outbox` (channel "email"). Throws std::invalid_argument for an address
  // in `settings` that is not one.
  DeadlineStore(Database& db, Catalog& catalog, Events& events, Outbox& outbox, const Clock& clock,
                Logger& log, DeadlineSettings settings);
  // Without an outbox the watch writes events and logs only (tests of other components).
  DeadlineStore(Database& db, Catalog& catalog, Events& events, const Clock& clock, Logger& log,
                DeadlineSettings settings);

  void set(Tx& tx, const Actor& actor, const Deadline& deadline) override;
  void reopen(Tx& tx, const Actor& actor, const Deadline& deadline) override;
  void complete(Tx& tx, const Actor& actor, const std::string& id) override;
  std::optional<Deadline> find(const std::string& id) const override;

  // `state`: "" for all, else open, missed or done; sorted by due instant, then id.
  std::vector<Deadline> list(const std::string& state) const;
  // One pass of the watch; returns a one-line summary for the job's record.
  std::string watch();

  // Who is told about `deadline` for `event` ("deadline.due" or "deadline.missed"): the
  // owner role's addresses, the deadline's own and, for a missed one, deadlines.escalate;
  // sorted, without repeats.
  std::vector<std::string> recipients(const Deadline& deadline, const std::string& event) const;

 private:
  DeadlineStore(Database& db, Catalog& catalog, Events& events, Outbox* outbox, const Clock& clock,
                Logger& log, DeadlineSettings settings);
  // set() and reopen(): `reopen` opens a deadline already done again.
  void put(Tx& tx, const Actor& actor, const Deadline& deadline, bool reopen);

  Database& db_;
  Catalog& catalog_;
  Events& events_;
  Outbox* outbox_;  // null: no notices
  const Clock& clock_;
  Logger& log_;
  DeadlineSettings settings_;
};

Json to_json(const Deadline& deadline);

}  // namespace slmhub::host
