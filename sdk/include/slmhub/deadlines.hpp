// Dated obligations (DOMAIN.md §5: report due, analysis due, SIA due, work order due, review
// due...) kept in one place, so one watch warns each owner ahead of every deadline and
// escalates every missed one, and one list answers "what is due, what is late".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub {

struct Deadline {
  std::string id;          // stable, chosen by the owner: "availability.report/2026-11"
  std::string kind;        // "availability_report", "availability_analysis", "sia", ...
  std::string subject;     // what it is about: "2026-11", "INC0001"
  std::string owner_role;  // who must act: "service_manager", "approver", ...
  std::string description;
  Instant due{};  // the end of the deadline's local day
  // Addresses told besides the owner role's (deadlines.notify.<role>), e.g. the contacts of
  // a customer that owns the obligation. Stored sorted, without repeats.
  std::vector<std::string> notify{};
  std::string state = "open";  // open, done, missed
  std::optional<Instant> warned_at{};
  std::optional<Instant> missed_at{};
  std::optional<Instant> done_at{};
};

class Deadlines {
 public:
  virtual ~Deadlines() = default;
  // Creates the deadline, or moves an open one to a new due instant (a moved deadline may
  // warn again). A deadline already done stays done. With the same due instant, a change of
  // `notify`, the description, subject, kind or owner role updates them and keeps the warning
  // already given. Throws std::invalid_argument for a `notify` entry that is not an e-mail
  // address.
  virtual void set(Tx& tx, const Actor& actor, const Deadline& deadline) = 0;
  // The obligation is owed again (a withdrawn work order that a later revision reopens): as
  // set(), and a deadline already done is opened again, to warn and escalate afresh.
  virtual void reopen(Tx& tx, const Actor& actor, const Deadline& deadline) = 0;
  // The obligation is met: no warning or escalation afterwards. Absent or done: nothing.
  virtual void complete(Tx& tx, const Actor& actor, const std::string& id) = 0;
  virtual std::optional<Deadline> find(const std::string& id) const = 0;
};

}  // namespace slmhub
