// The maintenance notice and hours rules (DOMAIN.md §8, lead times of §3) and the budget,
// on the provider calendar of the worked example: Chicago, Monday to Friday 08:00-17:00.
#include "rules.hpp"

#include <gtest/gtest.h>

#include <array>

namespace slmhub::alerts {
namespace {

using namespace std::chrono_literals;

BusinessCalendar chicago(std::set<date::year_month_day> holidays = {}) {
  std::array<std::optional<DayHours>, 7> hours{};
  for (int d = 1; d <= 5; ++d) hours[d] = DayHours{8 * 60, 17 * 60};
  return BusinessCalendar("business", find_zone("America/Chicago"), hours, std::move(holidays));
}

MaintenanceWindow window(MaintenanceCategory category, const char* start, const char* end) {
  MaintenanceWindow w;
  w.id = "CHG0000001";
  w.service = "oracle-prod";
  w.category = category;
  w.start = parse_instant(start);
  w.end = parse_instant(end);
  return w;
}

std::vector<std::string> rules(const Verdict& v) {
  std::vector<std::string> out;
  for (const auto& b : v.breaches) out.push_back(b.rule);
  return out;
}

TEST(Rules, ProductionPlannedOutageNeedsFourteenFullDays) {
  const auto cal = chicago();
  // Sunday 2026-12-13 02:00 CST = 08:00Z, outside business hours.
  const auto w =
      window(MaintenanceCategory::planned_outage, "2026-12-13T08:00:00Z", "2026-12-13T11:00:00Z");
  const auto exact =
      check_window(w, Environment::production, parse_instant("2026-11-29T08:00:00Z"), cal, nullptr);
  EXPECT_EQ(exact.implied, MaintenanceCategory::planned_outage);
  EXPECT_TRUE(exact.breaches.empty());
  // One second short: flagged, but with 5 business days it stays a planned outage (one
  // announced too late, which the availability engine counts as downtime).
  const auto late =
      check_window(w, Environment::production, parse_instant("2026-11-29T08:00:01Z"), cal, nullptr);
  EXPECT_EQ(late.implied, MaintenanceCategory::planned_outage);
  EXPECT_EQ(rules(late), std::vector<std::string>{"notice.planned_outage"});
  EXPECT_NE(late.breaches[0].message.find("13 days 23 hours"), std::string::npos)
      << late.breaches[0].message;
  // Under 5 business days (announced Tuesday 8 December for Sunday 13): an emergency.
  const auto urgent =
      check_window(w, Environment::production, parse_instant("2026-12-08T15:00:00Z"), cal, nullptr);
  EXPECT_EQ(urgent.implied, MaintenanceCategory::emergency);
  EXPECT_EQ(rules(urgent), std::vector<std::string>{"notice.planned_outage"});
}

TEST(Rules, QaPlannedOutageNeedsFiveBusinessDaysOfTheProviderCalendar) {
  // Announced Wednesday 2026-11-25; Thanksgiving (26th) is a holiday: five business days
  // are 27, 30, 1, 2, 3 December, so Thursday 3 December is the earliest start.
  const auto cal = chicago({date::year{2026} / 11 / 26});
  const Instant announced = parse_instant("2026-11-25T15:00:00Z");
  const auto on_time =
      window(MaintenanceCategory::planned_outage, "2026-12-03T16:00:00Z", "2026-12-03T17:00:00Z");
  EXPECT_TRUE(check_window(on_time, Environment::qa, announced, cal, &cal).breaches.empty());
  const auto early =
      window(MaintenanceCategory::planned_outage, "2026-12-02T16:00:00Z", "2026-12-02T17:00:00Z");
  const auto v = check_window(early, Environment::qa, announced, cal, &cal);
  EXPECT_EQ(v.implied, MaintenanceCategory::emergency);
  EXPECT_EQ(rules(v), std::vector<std::string>{"notice.planned_outage"});
}

TEST(Rules, ShortNoticeNonDisruptiveChangeIsExpedited) {
  const auto cal = chicago();
  const auto w = window(MaintenanceCategory::planned_non_disruptive, "2026-12-06T08:00:00Z",
                        "2026-12-06T09:00:00Z");
  const auto v =
      check_window(w, Environment::production, parse_instant("2026-12-02T12:00:00Z"), cal, nullptr);
  EXPECT_EQ(v.implied, MaintenanceCategory::expedited_non_disruptive);
  EXPECT_EQ(rules(v), std::vector<std::string>{"notice.planned_non_disruptive"});
  // Expedited is what it says: no notice rule.
  auto expedited = w;
  expedited.category = MaintenanceCategory::expedited_non_disruptive;
  EXPECT_TRUE(check_window(expedited, Environment::production,
                           parse_instant("2026-12-02T12:00:00Z"), cal, nullptr)
                  .breaches.empty());
}

TEST(Rules, HoursRulesAreFlaggedWithoutReclassifying) {
  const auto cal = chicago();
  const Instant announced = parse_instant("2026-10-01T12:00:00Z");
  // Production on Tuesday 2026-12-01 16:00-18:00 CST: one hour inside business hours.
  const auto prod =
      window(MaintenanceCategory::planned_outage, "2026-12-01T22:00:00Z", "2026-12-02T00:00:00Z");
  const auto v = check_window(prod, Environment::production, announced, cal, nullptr);
  EXPECT_EQ(v.implied, MaintenanceCategory::planned_outage);
  EXPECT_EQ(rules(v), std::vector<std::string>{"hours.production"});
  EXPECT_NE(v.breaches[0].message.find("1 hour"), std::string::npos) << v.breaches[0].message;
  // The same hours are right for QA; a Saturday is not.
  EXPECT_TRUE(check_window(window(MaintenanceCategory::planned_outage, "2026-12-01T15:00:00Z",
                                  "2026-12-01T17:00:00Z"),
                           Environment::qa, announced, cal, &cal)
                  .breaches.empty());
  const auto saturday =
      window(MaintenanceCategory::planned_outage, "2026-12-05T15:00:00Z", "2026-12-05T17:00:00Z");
  EXPECT_EQ(rules(check_window(saturday, Environment::development, announced, cal, &cal)),
            std::vector<std::string>{"hours.non_production"});
  // An emergency breaks no rule.
  auto emergency = prod;
  emergency.category = MaintenanceCategory::emergency;
  EXPECT_TRUE(check_window(emergency, Environment::production, emergency.start, cal, nullptr)
                  .breaches.empty());
}

TEST(Rules, BudgetCountsPreApprovedPlannedOutagesOfTheFiscalYearOnce) {
  Service s;
  s.id = "oracle-prod";
  s.maintenance_budget_hours_per_fy = 40;
  const auto* zone = find_zone("America/Chicago");
  std::vector<MaintenanceWindow> windows;
  auto add = [&](const char* id, const char* start, const char* end, MaintenanceCategory c,
                 MaintenanceStatus status, int days_notice = 30) {
    auto w = window(c, start, end);
    w.id = id;
    w.status = status;
    w.announced_at = w.start - std::chrono::hours(24 * days_notice);
    windows.push_back(w);
  };
  // FY 2027 runs from 2026-09-01 (fiscal start month 9).
  add("A", "2026-10-04T07:00:00Z", "2026-10-05T03:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::complete);  // 20 h
  add("B", "2026-10-04T17:00:00Z", "2026-10-05T05:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::scheduled);  // overlaps A: 2 h more
  add("C", "2026-11-01T08:00:00Z", "2026-11-02T04:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::scheduled);  // 20 h
  add("D", "2026-11-08T08:00:00Z", "2026-11-09T08:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::cancelled);  // ignored
  add("E", "2026-11-15T08:00:00Z", "2026-11-16T08:00:00Z", MaintenanceCategory::emergency,
      MaintenanceStatus::complete);  // not planned: not in the budget
  add("F", "2026-08-30T08:00:00Z", "2026-08-31T08:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::complete);  // FY 2026
  add("G", "2026-11-22T08:00:00Z", "2026-11-23T08:00:00Z", MaintenanceCategory::planned_outage,
      MaintenanceStatus::complete, 10);  // not pre-approved: downtime whole, no budget used
  const auto use =
      budget_use(s, zone, 9, chicago(), nullptr, windows, parse_instant("2026-12-01T00:00:00Z"));
  EXPECT_EQ(use.fiscal_year, 2027);
  EXPECT_EQ(use.budget_seconds, 40 * 3600);
  EXPECT_EQ(use.used_seconds, 42 * 3600);
  EXPECT_TRUE(use.over());
  EXPECT_EQ(use.remaining_seconds(), 0);
}

TEST(Rules, WindowsInWordsNameTheZoneOfEachEndWhenClocksChange) {
  const auto* zone = find_zone("America/Chicago");
  const std::vector<std::array<const char*, 3>> cases = {
      {"2026-12-12T08:00:00Z", "2026-12-12T12:00:00Z", "Sat 12 Dec 2026 02:00\u201306:00 CST"},
      // Three hours across the end of daylight saving time, and three across its start.
      {"2026-11-01T06:00:00Z", "2026-11-01T09:00:00Z", "Sun 01 Nov 2026 01:00 CDT\u201303:00 CST"},
      {"2026-03-08T07:00:00Z", "2026-03-08T10:00:00Z", "Sun 08 Mar 2026 01:00 CST\u201305:00 CDT"},
      {"2026-12-12T22:00:00Z", "2026-12-13T08:00:00Z",
       "Sat 12 Dec 2026 16:00 CST \u2013 Sun 13 Dec 2026 02:00 CST"},
  };
  for (const auto& [start, end, text] : cases) {
    EXPECT_EQ(window_text(parse_instant(start), parse_instant(end), zone), text) << start;
  }
}

TEST(Rules, DurationsInWords) {
  EXPECT_EQ(describe_duration(0), "0 seconds");
  EXPECT_EQ(describe_duration(3600), "1 hour");
  EXPECT_EQ(describe_duration(90 * 60), "1 hour 30 minutes");
  EXPECT_EQ(describe_duration(14 * 86400 - 1), "13 days 23 hours");
}

}  // namespace
}  // namespace slmhub::alerts
