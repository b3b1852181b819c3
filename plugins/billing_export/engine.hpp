// The billing rules of DOMAIN.md §9 as pure functions: no store, no clock. The plugin feeds
// them what it read and keeps what they return; the tests and the benchmark call them directly.
//
// A billing account is a customer (its billing code is the account's id). Every date here is a
// local calendar date in the provider's zone; every amount is integer cents; the only rounding
// is half up, once per line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/domain.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/json.hpp"
#include "slmhub/time.hpp"

namespace slmhub::billing {

using Date = date::year_month_day;
using Month = date::year_month;

inline constexpr std::int64_t kQuarterHour = 15;
inline constexpr std::int64_t kIncludedMinutesPerYear = 20 * 60;
inline constexpr std::int64_t kOncallWeekCents = 22400;
inline constexpr int kOncallLeadDays = 21;
inline constexpr int kOncallMaxDays = 14;

// Prices in force from `valid_from` until the next card's valid_from.
struct RateCard {
  std::string id;
  Date valid_from;
  std::int64_t hourly_rate_cents = 0;
  std::int64_t oncall_week_cents = kOncallWeekCents;
  // List prices of the offerings (service id → monthly charge), for the annual estimate.
  std::map<std::string, std::int64_t> offerings;
};

// The card in force on `day` (the latest valid_from on or before it); nullptr when none is.
// `cards` must be sorted by valid_from.
const RateCard* rate_card_on(const std::vector<RateCard>& cards, Date day);

enum class WorkKind { included_support, billable };
std::string to_string(WorkKind kind);
std::optional<WorkKind> parse_work_kind(std::string_view text);

struct TimeEntry {
  std::string id;
  std::string customer;
  Date date;
  std::int64_t minutes = 0;  // as recorded, > 0
  std::string description;
  std::string ticket;  // "" = none
  // included_support draws on the customer's included hours; billable (work outside the SLA's
  // scope, an hourly project) never does.
  WorkKind kind = WorkKind::included_support;
};

// Each entry is billed in whole quarter hours: 1 → 15, 15 → 15, 16 → 30, 61 → 75.
std::int64_t round_up_to_quarter_hour(std::int64_t minutes);

struct OncallRequest {
  std::string id;
  std::string customer;
  Date first_day;
  Date last_day;  // inclusive
  Date requested_on;
  std::string reason;
  std::string state = "scheduled";  // scheduled, cancelled
};

// Days covered, first and last included.
std::int64_t oncall_days(const OncallRequest& request);
// Started weeks of 7 days: 1-7 days → 1, 8-14 → 2.
std::int64_t oncall_weeks(const OncallRequest& request);
// The rule a request breaks, with the field it is wrong in ("first_day": "on-call must be
// requested at least 21 days ahead: ..."; "last_day" for the period's length and order), or
// nullopt. DOMAIN.md §9: at least 21 days in advance, at most 14 days, last day not before the
// first.
std::optional<FieldError> oncall_rule_broken(const OncallRequest& request);

// An approved SLA credit or a dispute's adjustment of one, as billing received it.
struct CreditItem {
  std::string id;      // the credit's id; an adjustment: "<credit id>#<event id>"
  std::string kind;    // credit, adjustment
  std::string credit;  // the credit it is or adjusts
  std::string customer;
  std::string service;
  std::string report_month;  // YYYY-MM of the incidents
  std::vector<std::string> incidents;
  std::string dispute;  // adjustments: the dispute that changed the amount
  // Money returned to the customer: a credit's amount; an adjustment's change (negative when
  // a dispute lowered the credit, and then billed as a charge).
  std::int64_t amount_cents = 0;
  Instant at{};                          // approved or adjusted
  std::vector<std::string> maintenance;  // the maintenance windows that counted as downtime
};

// One invoice line and where every cent of it comes from.
struct Line {
  std::string kind;  // subscription, time, oncall, credit, adjustment, carry_in, carry_forward
  std::string description;
  std::int64_t quantity_milli = 0;
  std::string unit_code;  // MON, HUR, WEE, C62
  std::int64_t unit_price_cents = 0;
  std::int64_t amount_cents = 0;
  std::optional<Date> period_start;
  std::optional<Date> period_end;
  std::string reference;  // service, ticket, incident numbers
  Json sources = Json::object();
};

struct InvoiceInput {
  Customer customer;
  const std::map<std::string, std::string>* service_names = nullptr;  // id → name, line text
  // id → the service's zone, whose calendar month a subscription to it is billed by (DOMAIN.md
  // §2, as its credits are computed); a service not listed uses `zone`.
  const std::map<std::string, const date::time_zone*>* service_zones = nullptr;
  Month month{};
  const date::time_zone* zone = nullptr;  // the provider's
  int fiscal_year_start_month = 9;
  const std::vector<RateCard>* rate_cards = nullptr;  // sorted by valid_from
  // Not yet on a finalised invoice and dated in this month or before (a late entry goes on the
  // next invoice), in any order.
  std::vector<TimeEntry> time_entries;
  // Included minutes already billed, per fiscal year.
  std::map<int, std::int64_t> included_used;
  std::int64_t included_minutes_per_year = kIncludedMinutesPerYear;
  std::vector<OncallRequest> oncall;  // scheduled, not yet billed, first day in or before month
  std::vector<CreditItem> credits;    // not yet billed, dated in or before month
  std::int64_t carry_in_cents = 0;    // credit left over from the previous invoice
  std::string carry_in_from;          // that invoice's number
};

struct Invoice {
  std::string customer;
  Month month{};
  std::vector<Line> lines;
  std::int64_t charges_cents = 0;  // the positive lines but carry_forward
  std::int64_t credits_cents = 0;  // what the credit, adjustment and carry_in lines return
  std::int64_t carry_out_cents = 0;
  std::int64_t total_cents = 0;  // never negative
  // No subscription of the customer runs past the month: the invoice is the final one.
  bool final_invoice = false;
};

// Thrown when a figure cannot be priced: a time entry or on-call request dated before every
// rate card. The message names the entry and the date.
struct PricingError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The invoice of one customer for one month (DOMAIN.md §9): subscription lines (each service
// active at any moment of the month is billed the month in full; when a change leaves two
// subscriptions of one service in the month, the later one is billed), time lines (each entry
// rounded up to the quarter hour, included minutes consumed in date order per fiscal year),
// on-call lines (per started week), credit lines, the credit carried in, and a carry_forward
// line that keeps the total at zero when credits exceed the charges. An invoice without lines
// is not issued.
Invoice compute_invoice(const InvoiceInput& input);

// Half up, for a non-negative or negative numerator: round(n / d) with d > 0.
std::int64_t divide_half_up(std::int64_t n, std::int64_t d);

// A customer's cost estimate for a fiscal year (DOMAIN.md §9, the SLA's "estimated costs for the
// upcoming year"): its subscriptions at that year's list prices (the rate card in force when
// the year starts; its own charge for an offering the card does not list), and the time and
// on-call of the twelve months before `made_on`'s month at that year's rates; compared with
// the current year: the subscriptions' months of the current fiscal year at the charges the
// customer pays now, and the same time and on-call at the rates in force on `made_on`.
struct EstimateInput {
  Customer customer;
  std::map<std::string, std::string> service_names;
  std::map<std::string, const date::time_zone*> service_zones;  // as InvoiceInput's
  int fiscal_year = 0;                                          // the year estimated
  int fiscal_year_start_month = 9;
  const date::time_zone* zone = nullptr;
  const std::vector<RateCard>* rate_cards = nullptr;
  Date made_on;
  std::vector<TimeEntry> time_entries;  // the customer's, any date (filtered here)
  std::vector<OncallRequest> oncall;    // the customer's, any date (filtered here)
  std::int64_t included_minutes_per_year = kIncludedMinutesPerYear;
  std::int64_t significant_basis_points = 1000;  // 10 %
};

// {fiscal_year, period, subscriptions[], time, oncall, total_cents, current_year_cents,
//  change_cents, change_basis_points, significant}
Json compute_estimate(const EstimateInput& input);

// First day of the fiscal year named `year` (ending in `year`).
Date fiscal_year_start(int year, int start_month);
int fiscal_year_of(Date day, int start_month);

}  // namespace slmhub::billing
