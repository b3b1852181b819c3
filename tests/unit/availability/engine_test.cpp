// The availability engine against DOMAIN.md §3-4: the shared worked example reproduced
// exactly, and one focused case per rule (overlaps, month boundaries, as_of, DST, maintenance
// budget and lead times, credit policies, rounding).
#include "engine.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "report_json.hpp"
#include "slmhub/domain.hpp"
#include "slmhub/json.hpp"
#include "test_files.hpp"

namespace slmhub::availability {
namespace {

using date::year;

Instant at(const char* text) { return parse_instant(text); }

// A one-service dataset in America/Chicago with two subscribers; each test adds what it needs.
Dataset base(const char* hours = "24x7", Environment env = Environment::production) {
  Dataset d;
  d.timezone = "America/Chicago";
  CalendarDef cal;
  cal.id = "business";
  cal.timezone = "America/Chicago";
  for (int wd = 1; wd <= 5; ++wd) cal.hours[static_cast<std::size_t>(wd)] = DayHours{480, 1020};
  cal.holidays = {year{2026} / 11 / 26, year{2026} / 11 / 27};
  d.calendars.push_back(cal);
  d.provider_calendar = "business";
  Service s;
  s.id = "svc";
  s.name = "Service";
  s.environment = env;
  s.hours = hours;
  s.target_thousandths = 99000;  // 1 % allowed
  d.services.push_back(s);
  d.customers.push_back(
      {"alpha", "Alpha", "A-1", {{"svc", 100000, std::nullopt, std::nullopt}}, {}});
  d.customers.push_back({"beta", "Beta", "B-1", {{"svc", 50000, std::nullopt, std::nullopt}}, {}});
  return d;
}

void outage(Dataset& d, const char* id, const char* start, std::optional<const char*> end,
            std::vector<std::string> customers = {},
            InterruptionType type = InterruptionType::outage) {
  Interruption i;
  i.id = id;
  i.service = "svc";
  i.type = type;
  i.start = at(start);
  if (end) i.end = at(*end);
  i.customers = std::move(customers);
  d.interruptions.push_back(i);
}

void window(Dataset& d, const char* id, MaintenanceCategory cat, const char* start, const char* end,
            std::optional<const char*> announced) {
  MaintenanceWindow w;
  w.id = id;
  w.service = "svc";
  w.category = cat;
  w.start = at(start);
  w.end = at(end);
  if (announced) w.announced_at = at(*announced);
  d.maintenance.push_back(w);
}

constexpr auto kNov = year{2026} / date::November;
constexpr int64_t kNovChicago = 2595600;  // 30 days + 1 hour (DST ends 1 Nov 2026)

TEST(AvailabilityVector, Example202611ReproducedExactly) {
  const std::string input = test::read_shared("vectors/example-2026-11.json");
  const std::string expected = test::read_shared("vectors/example-2026-11.expected.json");
  ASSERT_FALSE(input.empty());
  ASSERT_FALSE(expected.empty());
  const Dataset dataset = parse_dataset(parse_json(input));
  const Json got = report_to_json(compute(dataset, parse_month("2026-11"), std::nullopt));
  EXPECT_EQ(got, parse_json(expected)) << got.dump(2);
}

TEST(AvailabilityEngine, DstMonthLength) {
  const auto r = compute(base(), kNov, std::nullopt);
  ASSERT_EQ(r.services.size(), 1u);
  EXPECT_EQ(r.services[0].scheduled_seconds, kNovChicago);
  EXPECT_EQ(r.services[0].downtime_seconds, 0);
  EXPECT_EQ(r.services[0].availability_ten_thousandths, 1000000);
  EXPECT_TRUE(r.services[0].met);
  EXPECT_TRUE(r.credits.empty());
  EXPECT_EQ(report_to_json(r)["services"][0]["availability_percent"], Json(100));
}

TEST(AvailabilityEngine, OverlappingInterruptionsCountOnce) {
  Dataset d = base();
  outage(d, "INC2", "2026-11-03T14:30:00Z", "2026-11-03T15:30:00Z");
  outage(d, "INC1", "2026-11-03T14:00:00Z", "2026-11-03T15:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.downtime_seconds, 5400);
  EXPECT_EQ(f.interruptions, (std::vector<std::string>{"INC1", "INC2"}));
  EXPECT_EQ(f.customers_impacted, (std::vector<std::string>{"alpha", "beta"}));
}

TEST(AvailabilityEngine, InterruptionCrossingMonthBoundaryCountsItsOwnPart) {
  Dataset d = base();
  // Local 2026-11-30 23:00 CST to 2026-12-01 01:00 CST.
  outage(d, "INC1", "2026-12-01T05:00:00Z", "2026-12-01T07:00:00Z");
  EXPECT_EQ(compute(d, kNov, std::nullopt).services[0].downtime_seconds, 3600);
  EXPECT_EQ(compute(d, year{2026} / date::December, std::nullopt).services[0].downtime_seconds,
            3600);
}

TEST(AvailabilityEngine, AsOfCutsPeriodAndOpenInterruption) {
  Dataset d = base();
  outage(d, "INC1", "2026-11-10T12:00:00Z", std::nullopt);
  const auto r = compute(d, kNov, at("2026-11-10T14:00:00Z"));
  const auto& f = r.services[0];
  EXPECT_EQ(f.downtime_seconds, 7200);
  // 2026-11-01T05:00Z to 2026-11-10T14:00Z.
  EXPECT_EQ(f.scheduled_seconds, 9 * 86400 + 9 * 3600);
  // Without as_of an open interruption runs to the month's end.
  const auto full = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(full.downtime_seconds,
            (at("2026-12-01T06:00:00Z") - at("2026-11-10T12:00:00Z")).count());
}

TEST(AvailabilityEngine, DegradationDoesNotCount) {
  Dataset d = base();
  outage(d, "INC1", "2026-11-03T14:00:00Z", "2026-11-03T18:00:00Z", {},
         InterruptionType::degradation);
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.downtime_seconds, 0);
  EXPECT_TRUE(f.interruptions.empty());
  EXPECT_TRUE(f.customers_impacted.empty());
}

TEST(AvailabilityEngine, EmergencyMaintenanceIsDowntime) {
  Dataset d = base();
  window(d, "CHG1", MaintenanceCategory::emergency, "2026-11-05T10:00:00Z", "2026-11-05T11:00:00Z",
         "2026-09-01T00:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.downtime_seconds, 3600);
  EXPECT_EQ(f.excluded_maintenance_seconds, 0);
  EXPECT_EQ(f.maintenance_downtime, (std::vector<std::string>{"CHG1"}));
  EXPECT_EQ(f.customers_impacted, (std::vector<std::string>{"alpha", "beta"}));
}

TEST(AvailabilityEngine, LateAnnouncementIsDowntimeProduction) {
  Dataset d = base();
  // 14 × 24 h less one second before the start: too late.
  window(d, "CHG1", MaintenanceCategory::planned_outage, "2026-11-15T08:00:00Z",
         "2026-11-15T10:00:00Z", "2026-11-01T08:00:01Z");
  // Exactly 14 × 24 h: pre-approved.
  window(d, "CHG2", MaintenanceCategory::planned_outage, "2026-11-16T08:00:00Z",
         "2026-11-16T09:00:00Z", "2026-11-02T08:00:00Z");
  // Skipped and non-disruptive windows have no effect.
  window(d, "CHG3", MaintenanceCategory::emergency, "2026-11-17T08:00:00Z", "2026-11-17T09:00:00Z",
         std::nullopt);
  d.maintenance.back().status = MaintenanceStatus::skipped;
  window(d, "CHG4", MaintenanceCategory::planned_non_disruptive, "2026-11-18T08:00:00Z",
         "2026-11-18T09:00:00Z", std::nullopt);
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.downtime_seconds, 7200);
  EXPECT_EQ(f.excluded_maintenance_seconds, 3600);
  EXPECT_EQ(f.scheduled_seconds, kNovChicago - 3600);
  EXPECT_EQ(f.maintenance_downtime, (std::vector<std::string>{"CHG1"}));
}

TEST(AvailabilityEngine, LeadTimeInBusinessDaysOutsideProduction) {
  Dataset d = base("business", Environment::qa);
  // Announced Friday 2026-11-13; + 5 business days = Friday 2026-11-20.
  window(d, "CHG1", MaintenanceCategory::planned_outage, "2026-11-19T15:00:00Z",
         "2026-11-19T16:00:00Z", "2026-11-13T15:00:00Z");
  window(d, "CHG2", MaintenanceCategory::planned_outage, "2026-11-20T15:00:00Z",
         "2026-11-20T16:00:00Z", "2026-11-13T15:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.maintenance_downtime, (std::vector<std::string>{"CHG1"}));
  EXPECT_EQ(f.downtime_seconds, 3600);
  EXPECT_EQ(f.excluded_maintenance_seconds, 3600);
  // 19 business days × 9 h, less the excluded hour.
  EXPECT_EQ(f.scheduled_seconds, 19 * 9 * 3600 - 3600);
}

TEST(AvailabilityEngine, BudgetExhaustedAcrossWindowsOfOneFiscalYear) {
  Dataset d = base();
  d.services[0].maintenance_budget_hours_per_fy = 3;
  // October (same FY 2027, Sep-Aug) uses 2 h of the 3 h budget.
  window(d, "CHG1", MaintenanceCategory::planned_outage, "2026-10-04T08:00:00Z",
         "2026-10-04T10:00:00Z", "2026-09-01T00:00:00Z");
  // November: 2 h window, only 1 h left: second hour is downtime.
  window(d, "CHG2", MaintenanceCategory::planned_outage, "2026-11-08T08:00:00Z",
         "2026-11-08T10:00:00Z", "2026-10-01T00:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.excluded_maintenance_seconds, 3600);
  EXPECT_EQ(f.downtime_seconds, 3600);
  EXPECT_EQ(f.maintenance_downtime, (std::vector<std::string>{"CHG2"}));
  // A window in the previous fiscal year (FY 2026) does not use FY 2027's budget.
  Dataset e = base();
  e.services[0].maintenance_budget_hours_per_fy = 3;
  window(e, "CHG0", MaintenanceCategory::planned_outage, "2026-08-04T08:00:00Z",
         "2026-08-04T11:00:00Z", "2026-07-01T00:00:00Z");
  window(e, "CHG2", MaintenanceCategory::planned_outage, "2026-11-08T08:00:00Z",
         "2026-11-08T10:00:00Z", "2026-10-01T00:00:00Z");
  EXPECT_EQ(compute(e, kNov, std::nullopt).services[0].excluded_maintenance_seconds, 7200);
}

TEST(AvailabilityEngine, TwoWindowsInMonthShareBudgetChronologically) {
  Dataset d = base();
  d.services[0].maintenance_budget_hours_per_fy = 3;
  // Listed out of order: CHG-B starts first and takes 2 h; CHG-A gets 1 h of its 2 h.
  window(d, "CHG-A", MaintenanceCategory::planned_outage, "2026-11-20T08:00:00Z",
         "2026-11-20T10:00:00Z", "2026-10-01T00:00:00Z");
  window(d, "CHG-B", MaintenanceCategory::planned_outage, "2026-11-10T08:00:00Z",
         "2026-11-10T10:00:00Z", "2026-10-01T00:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.excluded_maintenance_seconds, 3 * 3600);
  EXPECT_EQ(f.downtime_seconds, 3600);
  EXPECT_EQ(f.maintenance_downtime, (std::vector<std::string>{"CHG-A"}));
}

TEST(AvailabilityEngine, ExcludedTimeWinsOverInterruption) {
  Dataset d = base();
  window(d, "CHG1", MaintenanceCategory::planned_outage, "2026-11-08T08:00:00Z",
         "2026-11-08T12:00:00Z", "2026-10-01T00:00:00Z");
  outage(d, "INC1", "2026-11-08T09:00:00Z", "2026-11-08T10:00:00Z");
  const auto f = compute(d, kNov, std::nullopt).services[0];
  EXPECT_EQ(f.downtime_seconds, 0);
  EXPECT_TRUE(f.interruptions.empty());
}

// Target 99 % of 2,595,600 s allows 25,956 s.
TEST(AvailabilityCredits, ProportionalAndNoSubscriptionNoCredit) {
  Dataset d = base();
  d.customers.push_back({"gamma", "Gamma", "G-1", {}, {}});
  d.customers[1].subscriptions[0].end = at("2026-10-01T00:00:00Z");  // beta left in October
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z",
         {"alpha", "beta", "gamma"});  // 36,000 s
  const auto r = compute(d, kNov, std::nullopt);
  EXPECT_EQ(r.services[0].allowed_downtime_seconds, 25956);
  EXPECT_EQ(r.services[0].customers_impacted, (std::vector<std::string>{"alpha", "beta", "gamma"}));
  ASSERT_EQ(r.credits.size(), 1u);
  EXPECT_EQ(r.credits[0].customer, "alpha");
  EXPECT_EQ(r.credits[0].excess_downtime_seconds, 36000 - 25956);
  // 100,000 × 10,044 / 2,595,600 = 386.96 → 387.
  EXPECT_EQ(r.credits[0].credit_cents, 387);
}

TEST(AvailabilityCredits, CustomerDowntimeOnlyFromItsInterruptions) {
  Dataset d = base();
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z", {"alpha"});
  outage(d, "INC2", "2026-11-04T00:00:00Z", "2026-11-04T01:00:00Z");
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.credits.size(), 1u);  // beta: 3,600 s, within the allowance
  EXPECT_EQ(r.credits[0].customer, "alpha");
  EXPECT_EQ(r.credits[0].downtime_seconds, 39600);
  EXPECT_EQ(r.credits[0].interruptions, (std::vector<std::string>{"INC1", "INC2"}));
}

// Enough interruptions that the index groups them by service in several blocks: every
// service still gets exactly its own, with their names.
TEST(AvailabilityCredits, ManyInterruptionsOverSeveralServices) {
  Dataset d = base();
  constexpr int kServices = 3;
  for (int k = 1; k < kServices; ++k) {
    Service s = d.services[0];
    s.id = "svc" + std::to_string(k);
    d.services.push_back(s);
    for (auto& c : d.customers)
      c.subscriptions.push_back({s.id, 100000, std::nullopt, std::nullopt});
  }
  // 150,000 outages of 10 s, 17 s apart from 2026-11-01T06:00Z: services in turn; naming alpha,
  // beta, or no one (every subscriber) in turn, out of step with the services.
  constexpr int kOutages = 150000;
  std::map<std::string, std::vector<std::string>> ids;                          // by service
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> own;  // service, customer
  const Instant first = at("2026-11-01T06:00:00Z");
  for (int n = 0; n < kOutages; ++n) {
    char id[16];
    std::snprintf(id, sizeof id, "INC%06d", n);
    Interruption i;
    i.id = id;
    i.service = d.services[static_cast<std::size_t>(n % kServices)].id;
    i.start = first + std::chrono::seconds(17 * n);
    i.end = i.start + std::chrono::seconds(10);
    if (n % 5 < 2) i.customers = {n % 5 == 0 ? "alpha" : "beta"};
    ids[i.service].push_back(i.id);
    for (const char* c : {"alpha", "beta"}) {
      if (i.customers.empty() || i.customers[0] == c) own[{i.service, c}].push_back(i.id);
    }
    d.interruptions.push_back(std::move(i));
  }
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.services.size(), 3u);
  for (const auto& f : r.services) {
    SCOPED_TRACE(f.service);
    EXPECT_EQ(f.downtime_seconds, 10 * static_cast<int64_t>(ids[f.service].size()));
    EXPECT_EQ(f.interruptions, ids[f.service]);
    EXPECT_EQ(f.customers_impacted, (std::vector<std::string>{"alpha", "beta"}));
  }
  ASSERT_EQ(r.credits.size(), 6u);
  for (const auto& c : r.credits) {
    SCOPED_TRACE(c.service + "/" + c.customer);
    const auto& expected = own[{c.service, c.customer}];
    EXPECT_EQ(c.downtime_seconds, 10 * static_cast<int64_t>(expected.size()));
    EXPECT_EQ(c.interruptions, expected);
  }
}

// References resolved for one dataset are refused for another, rather than read out of
// bounds; the engine resolves its own when given none.
TEST(AvailabilityEngine, ReferencesOfAnotherDatasetAreRefused) {
  Dataset d = base();
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z", {"beta"});
  const DatasetReferences before = resolve_references(d);
  outage(d, "INC2", "2026-11-05T00:00:00Z", "2026-11-05T01:00:00Z", {"alpha"});
  EXPECT_THROW(Engine(d, before), std::invalid_argument);
  DatasetReferences beyond = resolve_references(d);
  beyond.interruption_service[1] = static_cast<uint32_t>(d.services.size());
  EXPECT_THROW(Engine(d, beyond), std::out_of_range);
  beyond = resolve_references(d);
  beyond.named[0] = static_cast<uint32_t>(d.customers.size());
  EXPECT_THROW(Engine(d, beyond), std::out_of_range);
  beyond = resolve_references(d);
  beyond.named_first[1] = 0;  // INC1 names no one, by these references
  EXPECT_THROW(Engine(d, beyond), std::invalid_argument);
  const auto resolved = Engine(d, resolve_references(d)).report(kNov, std::nullopt);
  EXPECT_EQ(resolved, compute(d, kNov, std::nullopt));
  EXPECT_EQ(resolved.services[0].interruptions, (std::vector<std::string>{"INC1", "INC2"}));
}

// A served store need not pass check_references: a name no customer has is still reported
// as impacted, in id order among the others, and credits stay with the subscribers.
TEST(AvailabilityCredits, NameWithoutCustomerIsImpactedButNotCredited) {
  Dataset d = base();
  outage(d, "INC2", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z", {"beta", "aaron", "beta"});
  outage(d, "INC1", "2026-11-05T00:00:00Z", "2026-11-05T01:00:00Z", {"zeta", "alpha"});
  const auto r = compute(d, kNov, std::nullopt);
  EXPECT_EQ(r.services[0].customers_impacted,
            (std::vector<std::string>{"aaron", "alpha", "beta", "zeta"}));
  EXPECT_EQ(r.services[0].interruptions, (std::vector<std::string>{"INC1", "INC2"}));
  ASSERT_EQ(r.credits.size(), 1u);  // alpha: 3,600 s, within the allowance
  EXPECT_EQ(r.credits[0].customer, "beta");
  EXPECT_EQ(r.credits[0].downtime_seconds, 36000);
  EXPECT_EQ(r.credits[0].interruptions, (std::vector<std::string>{"INC2"}));
}

// Ids longer than the engine keeps inline, differing only past it, are told apart.
TEST(AvailabilityCredits, LongIdsDifferingLateAreDistinct) {
  Dataset d = base();
  const std::string service = "database-cluster-production-east";
  const std::string one = "customer-with-a-long-identifier-1";
  const std::string two = "customer-with-a-long-identifier-2";
  d.services[0].id = service;
  d.customers[0].id = one;
  d.customers[0].subscriptions[0].service = service;
  d.customers[1].id = two;
  d.customers[1].subscriptions[0].service = service;
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z", {two});
  d.interruptions.back().service = service;
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.services.size(), 1u);
  EXPECT_EQ(r.services[0].service, service);
  EXPECT_EQ(r.services[0].downtime_seconds, 36000);
  EXPECT_EQ(r.services[0].customers_impacted, (std::vector<std::string>{two}));
  ASSERT_EQ(r.credits.size(), 1u);
  EXPECT_EQ(r.credits[0].customer, two);
  EXPECT_EQ(r.credits[0].monthly_charge_cents, 50000);
}

TEST(AvailabilityCredits, TieredPicksLowestApplicableTierAndZeroCentRow) {
  Dataset d = base();
  d.services[0].target_thousandths = 99900;  // allowed 2,595 s
  CreditPolicy p;
  p.type = CreditPolicyType::tiered;
  p.tiers = {{99000, 10000}, {99500, 5000}, {95000, 25000}};
  d.services[0].credit_policy = p;
  // alpha: 36,000 s down → 98.61 %: below 99 and 99.5 → lowest is 99 → 10 %.
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T10:00:00Z", {"alpha"});
  // beta: 3,600 s → 99.86 %: above every tier → 0 cents, row still listed.
  outage(d, "INC2", "2026-11-04T00:00:00Z", "2026-11-04T01:00:00Z", {"beta"});
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.credits.size(), 2u);
  EXPECT_EQ(r.credits[0].customer, "alpha");
  EXPECT_EQ(r.credits[0].credit_cents, 10000);
  EXPECT_EQ(r.credits[1].customer, "beta");
  EXPECT_EQ(r.credits[1].excess_downtime_seconds, 3600 - 2595);
  EXPECT_EQ(r.credits[1].credit_cents, 0);
}

TEST(AvailabilityCredits, TierBoundaryIsStrictlyBelow) {
  Dataset d = base();
  d.services[0].target_thousandths = 99900;
  CreditPolicy p;
  p.type = CreditPolicyType::tiered;
  p.tiers = {{99000, 10000}};
  d.services[0].credit_policy = p;
  // Exactly 1 % of 2,595,600 s down: availability is exactly 99 %, not below it.
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-03T07:12:36Z", {"alpha"});
  auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.credits.size(), 1u);
  EXPECT_EQ(r.credits[0].downtime_seconds, 25956);
  EXPECT_EQ(r.credits[0].credit_cents, 0);
  // One second more and it is below.
  d.interruptions[0].end = at("2026-11-03T07:12:37Z");
  r = compute(d, kNov, std::nullopt);
  EXPECT_EQ(r.credits[0].credit_cents, 10000);
}

TEST(AvailabilityCredits, CapLimitsCredit) {
  Dataset d = base();
  CreditPolicy p;
  p.cap_thousandths = 10000;  // 10 %
  d.credit_policy = p;
  // 10 days down: proportional would be far above 10 %.
  outage(d, "INC1", "2026-11-03T00:00:00Z", "2026-11-13T00:00:00Z", {"alpha"});
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.credits.size(), 1u);
  EXPECT_EQ(r.credits[0].credit_cents, 10000);
}

TEST(AvailabilityCredits, HalfUpRoundingAtExactlyHalf) {
  EXPECT_EQ(round_half_up(5, 2), 3);
  EXPECT_EQ(round_half_up(7, 2), 4);
  EXPECT_EQ(round_half_up(149, 100), 1);
  EXPECT_EQ(round_half_up(0, 7), 0);
  // Through the engine: charge 1 cent, excess = scheduled / 2 gives exactly 0.5 → 1.
  Dataset d = base();
  d.services[0].target_thousandths = 100000;  // nothing allowed
  d.customers[0].subscriptions[0].monthly_charge_cents = 1;
  outage(d, "INC1", "2026-11-01T05:00:00Z", "2026-11-16T05:30:00Z", {"alpha"});  // 1,297,800 s
  const auto r = compute(d, kNov, std::nullopt);
  ASSERT_EQ(r.credits.size(), 1u);
  EXPECT_EQ(r.credits[0].excess_downtime_seconds * 2, kNovChicago);
  EXPECT_EQ(r.credits[0].credit_cents, 1);
  EXPECT_EQ(report_to_json(r)["services"][0]["availability_percent"], Json(50));
}

TEST(AvailabilityIdList, KeepsIdsOfAnyLengthInOrder) {
  const std::string long_id(300, 'x');  // past the one-byte length
  const std::string edge(255, 'y');     // the first length that needs five bytes
  IdList ids{"INC1", "", long_id, edge, "INC2"};
  ids.push_back(std::string(254, 'z'));
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"INC1", "", long_id, edge, "INC2", std::string(254, 'z')}));
  EXPECT_FALSE(ids == (std::vector<std::string>{"INC1", "", long_id, edge, "INC2"}));
  const std::vector<std::string> copied(ids.begin(), ids.end());
  EXPECT_EQ(IdList(copied.begin(), copied.end()), ids);
  EXPECT_NE(IdList({"a", "bc"}), IdList({"ab", "c"}));
  std::ostringstream printed;
  printed << IdList{"a", "b"};
  EXPECT_EQ(printed.str(), "[a, b]");
  EXPECT_TRUE(IdList{}.empty());
}

TEST(AvailabilityIdList, CopiesShareTheirTextUntilOneChanges) {
  const std::string long_id(300, 'x');
  IdList original{"INC1", long_id};
  IdList copy = original;
  copy.push_back("INC3");
  EXPECT_EQ(original, (std::vector<std::string>{"INC1", long_id}));
  EXPECT_EQ(copy, (std::vector<std::string>{"INC1", long_id, "INC3"}));
  original.push_back("INC2");  // alone again: grows in place
  EXPECT_EQ(original, (std::vector<std::string>{"INC1", long_id, "INC2"}));
  EXPECT_EQ(copy.size(), 3u);

  IdList assigned{"old"};
  assigned = original;
  const IdList& same = assigned;
  assigned = same;  // itself
  EXPECT_EQ(assigned, original);
  IdList moved = std::move(assigned);
  EXPECT_TRUE(assigned.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(assigned.begin(), assigned.end());
  EXPECT_EQ(moved, original);
  {
    const IdList scoped = moved;  // a sharer that goes away first
  }
  moved.reserve(10, 100);
  moved.push_back("INC4");
  EXPECT_EQ(moved, (std::vector<std::string>{"INC1", long_id, "INC2", "INC4"}));
  EXPECT_EQ(original, (std::vector<std::string>{"INC1", long_id, "INC2"}));

  // A run of another list's ids, copied whole: here the second and third.
  IdList runs{"a"};
  auto from = original.begin();
  ++from;
  runs.append(from, original.end());
  runs.append(original.end(), original.end());
  EXPECT_EQ(runs, (std::vector<std::string>{"a", long_id, "INC2"}));
  EXPECT_EQ(runs.size(), 3u);
  EXPECT_NE(runs, original);
}

TEST(AvailabilityReportJson, AvailabilityPercentDigits) {
  EXPECT_EQ(ten_thousandths_to_json(994189).dump(), "99.4189");
  EXPECT_EQ(ten_thousandths_to_json(988304).dump(), "98.8304");
  EXPECT_EQ(ten_thousandths_to_json(995000).dump(), "99.5");
  EXPECT_EQ(ten_thousandths_to_json(1000000).dump(), "100");
  EXPECT_EQ(ten_thousandths_to_json(5).dump(), "0.0005");
}

}  // namespace
}  // namespace slmhub::availability
