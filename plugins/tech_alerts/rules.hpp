// The notice and hours rules for maintenance windows (DOMAIN.md §8, with the lead times of
// §3) and the fiscal-year maintenance budget. Pure functions over the SDK's calendars, so
// every rule is tested without a store.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "slmhub/domain.hpp"
#include "slmhub/time.hpp"

namespace slmhub::alerts {

// One broken rule: a stable id ("notice.planned_outage"), the JSON field it concerns and a
// sentence a scheduler understands.
struct RuleBreach {
  std::string rule;
  std::string field;  // "$.category", "$.start"
  std::string message;
};

struct Verdict {
  // The category the facts imply: the declared one unless the notice was too short for it.
  MaintenanceCategory implied = MaintenanceCategory::planned_outage;
  std::vector<RuleBreach> breaches;
};

// Checks `window` as announced at `announced`:
// - notice: a planned outage needs 14 × 24 h in production and 5 business days of the
//   provider calendar elsewhere (the start date on or after the announcement date + 5
//   business days); a planned non-disruptive change needs 5 business days everywhere. Less
//   than 5 business days implies the short-notice category of the same kind: emergency for a
//   disruptive window, expedited_non_disruptive for a non-disruptive one. A production
//   planned outage with 5 business days but under 14 days fits no category: it is flagged
//   and stays a planned outage (not pre-approved, so downtime).
// - hours: production maintenance must not touch the provider's business hours; QA and
//   development maintenance must lie inside business hours (the service's calendar, or the
//   provider's for a 24x7 service). No category fixes the hours, so these are flagged only.
// Emergency windows break no rule: they are the category for what could not wait.
// `service_hours` is the service's own calendar, null for 24x7.
Verdict check_window(const MaintenanceWindow& window, Environment environment, Instant announced,
                     const BusinessCalendar& provider, const BusinessCalendar* service_hours);

// A window's share of the maintenance budget: its seconds inside service hours.
struct BudgetUse {
  int fiscal_year = 0;
  std::int64_t budget_seconds = 0;
  std::int64_t used_seconds = 0;  // planned outages of that year, this one included
  std::int64_t remaining_seconds() const {
    return used_seconds >= budget_seconds ? 0 : budget_seconds - used_seconds;
  }
  bool over() const { return used_seconds > budget_seconds; }
};

// A window in words, in `zone`: "Sat 12 Dec 2026 02:00–06:00 CST" on one day, both zone
// names when the clocks change inside it, both dates when it spans days.
std::string window_text(Instant start, Instant end, const date::time_zone* zone);

// A planned outage announced with its notice (DOMAIN.md §3: 14 × 24 h in production, 5
// business days of `provider` elsewhere): excluded from downtime within the budget.
bool pre_approved(const MaintenanceWindow& window, Environment environment,
                  const BusinessCalendar& provider);

// The fiscal-year budget use of `service` (in its zone, with the dataset's fiscal start
// month): the union of its scheduled or complete pre-approved planned outages that start in
// the fiscal year of `at`, measured inside service hours (all of it for 24x7).
BudgetUse budget_use(const Service& service, const date::time_zone* zone, int fiscal_start_month,
                     const BusinessCalendar& provider, const BusinessCalendar* service_hours,
                     const std::vector<MaintenanceWindow>& windows, Instant at);

// "3 business days", "13 days 4 hours": notice in words for the messages above.
std::string describe_duration(std::int64_t seconds);

}  // namespace slmhub::alerts
