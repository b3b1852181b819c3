// The billing rules of DOMAIN.md §9 with figures checked by hand: proration by whole months,
// quarter-hour rounding, the 20 included hours consumed in date order, on-call per started week,
// credits, the carry-forward, and the annual estimate.
#include "engine.hpp"

#include <gtest/gtest.h>

namespace slmhub::billing {
namespace {

const date::time_zone* chicago() { return find_zone("America/Chicago"); }

std::vector<RateCard> cards() {
  RateCard fy2027{"RC-FY2027", parse_date("2026-09-01"), 9500, 22400, {{"oracle-prod", 150000}}};
  RateCard fy2028{"RC-FY2028", parse_date("2027-09-01"), 10000, 22400, {{"oracle-prod", 165000}}};
  return {fy2027, fy2028};
}

Subscription sub(const std::string& service, std::int64_t cents, const char* start,
                 const char* end = nullptr) {
  Subscription s{service, cents, parse_instant(start), std::nullopt};
  if (end) s.end = parse_instant(end);
  return s;
}

InvoiceInput input(const std::vector<RateCard>& rc, const char* month, Customer c) {
  InvoiceInput in;
  in.customer = std::move(c);
  in.month = parse_month(month);
  in.zone = chicago();
  in.rate_cards = &rc;
  return in;
}

TimeEntry entry(const std::string& id, const char* day, std::int64_t minutes,
                WorkKind kind = WorkKind::included_support) {
  return {id, "registrar", parse_date(day), minutes, "work " + id, "DB0000042", kind};
}

TEST(Billing, EachTimeEntryIsRoundedUpToTheQuarterHour) {
  EXPECT_EQ(round_up_to_quarter_hour(1), 15);
  EXPECT_EQ(round_up_to_quarter_hour(14), 15);
  EXPECT_EQ(round_up_to_quarter_hour(15), 15);
  EXPECT_EQ(round_up_to_quarter_hour(16), 30);
  EXPECT_EQ(round_up_to_quarter_hour(61), 75);
}

TEST(Billing, BillableEntriesOf1_14_15_16And61MinutesAt95PerHour) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-11", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  for (auto [id, minutes] : {std::pair{"a", 1}, {"b", 14}, {"c", 15}, {"d", 16}, {"e", 61}})
    in.time_entries.push_back(entry(id, "2026-11-10", minutes, WorkKind::billable));
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 5u);
  // 15, 15, 15, 30 and 75 minutes at 95.00 an hour: 23.75, 23.75, 23.75, 47.50, 118.75.
  const std::vector<std::int64_t> amounts = {2375, 2375, 2375, 4750, 11875};
  const std::vector<std::int64_t> quantities = {250, 250, 250, 500, 1250};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(inv.lines[i].amount_cents, amounts[i]) << i;
    EXPECT_EQ(inv.lines[i].quantity_milli, quantities[i]) << i;
    EXPECT_EQ(inv.lines[i].sources["time_entry"]["included_minutes"], 0);
  }
  EXPECT_EQ(inv.total_cents, 23750);
  EXPECT_EQ(inv.lines[4].description,
            "2026-11-10 work e (61 min recorded, 75 billable: 0 included, 75 billed)");
}

TEST(Billing, TheTwentyIncludedHoursRunOutInsideOneMonthInDateOrder) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-12", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  in.included_used[2027] = 19 * 60;  // 19 hours billed in September to November
  // Out of order on purpose: date order decides who gets the last included minutes.
  in.time_entries = {entry("e", "2026-12-15", 61), entry("a", "2026-12-01", 1),
                     entry("d", "2026-12-14", 16), entry("b", "2026-12-02", 14),
                     entry("c", "2026-12-03", 15)};
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 5u);
  // 1140 + 15 + 15 + 15 = 1185; the 16-minute entry (30) takes the last 15 and bills 15;
  // the 61-minute entry (75) is billed in full.
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  const std::vector<std::int64_t> included = {15, 15, 15, 15, 0};
  const std::vector<std::int64_t> billed = {0, 0, 0, 15, 75};
  for (std::size_t i = 0; i < 5; ++i) {
    const Json& s = inv.lines[i].sources["time_entry"];
    EXPECT_EQ(s["id"], ids[i]);
    EXPECT_EQ(s["included_minutes"], included[i]) << i;
    EXPECT_EQ(s["billed_minutes"], billed[i]) << i;
  }
  EXPECT_EQ(inv.lines[3].amount_cents, 2375);
  EXPECT_EQ(inv.lines[4].amount_cents, 11875);
  EXPECT_EQ(inv.lines[4].sources["time_entry"]["included_left_after"], 0);
  EXPECT_EQ(inv.total_cents, 14250);
}

TEST(Billing, IncludedHoursStartAgainWithTheFiscalYearAndBillableWorkNeverUsesThem) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2027-09", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  in.included_used[2027] = 1200;
  in.time_entries = {entry("late", "2027-08-31", 60), entry("new", "2027-09-01", 60),
                     entry("project", "2027-09-02", 60, WorkKind::billable)};
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 3u);
  // FY2027's hours are used up; FY2028 starts on 1 September with its own 20 hours, at the
  // FY2028 card's 100.00 an hour.
  EXPECT_EQ(inv.lines[0].sources["time_entry"]["billed_minutes"], 60);
  EXPECT_EQ(inv.lines[0].amount_cents, 9500);
  EXPECT_EQ(inv.lines[1].sources["time_entry"]["included_minutes"], 60);
  EXPECT_EQ(inv.lines[1].amount_cents, 0);
  EXPECT_EQ(inv.lines[2].sources["time_entry"]["billed_minutes"], 60);
  EXPECT_EQ(inv.lines[2].amount_cents, 10000);
}

TEST(Billing, AmountsRoundHalfUpOncePerLine) {
  std::vector<RateCard> rc = {{"odd", parse_date("2026-01-01"), 9999, 22400, {}}};
  InvoiceInput in = input(rc, "2026-11", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  in.time_entries = {entry("a", "2026-11-02", 15, WorkKind::billable),
                     entry("b", "2026-11-03", 30, WorkKind::billable)};
  const Invoice inv = compute_invoice(in);
  EXPECT_EQ(inv.lines[0].amount_cents, 2500);  // 2499.75
  EXPECT_EQ(inv.lines[1].amount_cents, 5000);  // 4999.5
  EXPECT_EQ(divide_half_up(-5, 2), -3);
  EXPECT_EQ(divide_half_up(5, 2), 3);
  EXPECT_EQ(divide_half_up(4, 3), 1);
}

TEST(Billing, ASubscriptionStartingMidFiscalYearIsBilledFromTheMonthItStartsIn) {
  const auto rc = cards();
  // 15 January 2027, local midnight in Chicago; ends 10 March 2027.
  Customer c{"archives",
             "Archives",
             "ARC-300",
             {sub("mysql-qa", 40000, "2027-01-15T06:00:00Z", "2027-03-10T06:00:00Z")},
             {}};
  EXPECT_TRUE(compute_invoice(input(rc, "2026-12", c)).lines.empty());
  const Invoice jan = compute_invoice(input(rc, "2027-01", c));
  ASSERT_EQ(jan.lines.size(), 1u);
  EXPECT_EQ(jan.lines[0].amount_cents, 40000);  // the month it starts in counts in full
  EXPECT_EQ(jan.lines[0].unit_code, "MON");
  EXPECT_EQ(format_date(*jan.lines[0].period_start), "2027-01-01");
  EXPECT_EQ(format_date(*jan.lines[0].period_end), "2027-01-31");
  EXPECT_FALSE(jan.final_invoice);
  const Invoice march = compute_invoice(input(rc, "2027-03", c));
  EXPECT_EQ(march.total_cents, 40000);  // the month it ends in counts in full
  EXPECT_TRUE(march.final_invoice);
  EXPECT_TRUE(compute_invoice(input(rc, "2027-04", c)).lines.empty());
  // Fiscal year 2027 (September 2026 to August 2027) bills it for January to March, and its
  // estimate counts the same months.
  EstimateInput fy;
  fy.customer = c;
  fy.fiscal_year = 2027;
  fy.zone = chicago();
  fy.rate_cards = &rc;
  fy.made_on = parse_date("2026-09-01");
  EXPECT_EQ(compute_estimate(fy)["subscriptions"][0]["months"], 3);
}

// A month is the calendar month in the service's zone (DOMAIN.md §2), as for its credits:
// a Berlin service's subscription starting at midnight on 1 December in Berlin is not billed
// for November, although that instant is still November in Chicago, the provider's zone.
TEST(Billing, ASubscriptionIsBilledByTheMonthsOfItsServicesZone) {
  const auto rc = cards();
  const std::map<std::string, const date::time_zone*> zones = {
      {"mysql-berlin", find_zone("Europe/Berlin")}};
  Customer c{"archives",
             "Archives",
             "ARC-300",
             {sub("mysql-berlin", 40000, "2026-11-30T23:00:00Z", "2027-01-31T23:00:00Z")},
             {}};
  auto in_berlin = [&](const char* month) {
    InvoiceInput in = input(rc, month, c);
    in.service_zones = &zones;
    return compute_invoice(in);
  };
  EXPECT_TRUE(in_berlin("2026-11").lines.empty());
  EXPECT_EQ(in_berlin("2026-12").total_cents, 40000);
  const Invoice jan = in_berlin("2027-01");
  EXPECT_EQ(jan.total_cents, 40000);
  EXPECT_TRUE(jan.final_invoice);  // it ends with January in Berlin
  EXPECT_TRUE(in_berlin("2027-02").lines.empty());
  // By the provider's months alone, November would have been billed too.
  EXPECT_EQ(compute_invoice(input(rc, "2026-11", c)).total_cents, 40000);

  EstimateInput estimate;
  estimate.customer = c;
  estimate.service_zones = zones;
  estimate.fiscal_year = 2027;
  estimate.zone = chicago();
  estimate.rate_cards = &rc;
  estimate.made_on = parse_date("2026-10-01");
  const Json e = compute_estimate(estimate);
  EXPECT_EQ(e["subscriptions"][0]["months"], 2);  // December and January; Chicago's: three
}

TEST(Billing, AChangeInTheMiddleOfAMonthBillsTheMonthOnceAtTheNewCharge) {
  const auto rc = cards();
  Customer c{"registrar",
             "Registrar",
             "REG-100",
             {sub("oracle-prod", 150000, "2025-09-01T05:00:00Z", "2026-11-16T06:00:00Z"),
              sub("oracle-prod", 180000, "2026-11-16T06:00:00Z")},
             {}};
  const Invoice nov = compute_invoice(input(rc, "2026-11", c));
  ASSERT_EQ(nov.lines.size(), 1u);
  EXPECT_EQ(nov.lines[0].amount_cents, 180000);
  EXPECT_EQ(compute_invoice(input(rc, "2026-10", c)).total_cents, 150000);
}

TEST(Billing, OncallIsBilledPerStartedWeekAndRequestedByTheRules) {
  OncallRequest ten{"OC-1",
                    "registrar",
                    parse_date("2026-12-28"),
                    parse_date("2027-01-06"),
                    parse_date("2026-12-01"),
                    "registration",
                    "scheduled"};
  EXPECT_EQ(oncall_days(ten), 10);
  EXPECT_EQ(oncall_weeks(ten), 2);
  EXPECT_FALSE(oncall_rule_broken(ten));
  OncallRequest seven = ten;
  seven.last_day = parse_date("2027-01-03");
  EXPECT_EQ(oncall_weeks(seven), 1);

  OncallRequest sixteen = ten;
  sixteen.last_day = parse_date("2027-01-12");
  ASSERT_TRUE(oncall_rule_broken(sixteen));
  EXPECT_EQ(oncall_rule_broken(sixteen)->path, "last_day");
  EXPECT_EQ(oncall_rule_broken(sixteen)->message,
            "on-call periods are at most 14 days; 2026-12-28 to 2027-01-12 is 16 days");
  OncallRequest backwards = ten;
  backwards.last_day = parse_date("2026-12-27");
  ASSERT_TRUE(oncall_rule_broken(backwards));
  EXPECT_EQ(oncall_rule_broken(backwards)->path, "last_day");
  OncallRequest late = ten;
  late.requested_on = parse_date("2026-12-08");  // 20 days ahead
  ASSERT_TRUE(oncall_rule_broken(late));
  EXPECT_EQ(oncall_rule_broken(late)->path, "first_day");
  EXPECT_EQ(oncall_rule_broken(late)->message,
            "on-call must be requested at least 21 days ahead: requested on 2026-12-08, so the "
            "first day can be 2026-12-29 at the earliest, not 2026-12-28");
  late.requested_on = parse_date("2026-12-07");  // exactly 21 days
  EXPECT_FALSE(oncall_rule_broken(late));

  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-12", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  in.oncall = {ten};
  OncallRequest cancelled = seven;
  cancelled.id = "OC-2";
  cancelled.state = "cancelled";
  in.oncall.push_back(cancelled);
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 1u);
  EXPECT_EQ(inv.lines[0].kind, "oncall");
  EXPECT_EQ(inv.lines[0].quantity_milli, 2000);
  EXPECT_EQ(inv.lines[0].unit_price_cents, 22400);
  EXPECT_EQ(inv.lines[0].amount_cents, 44800);
  EXPECT_EQ(inv.lines[0].description, "On-call 2026-12-28 to 2027-01-06 (10 days, 2 weeks)");
}

TEST(Billing, ACreditLargerThanTheChargesIsCarriedForwardAndTheInvoiceIsNeverNegative) {
  const auto rc = cards();
  Customer c{
      "library", "Libraries", "LIB-200", {sub("oracle-prod", 90000, "2026-01-01T06:00:00Z")}, {}};
  InvoiceInput dec = input(rc, "2026-12", c);
  dec.credits = {{"WO:2026-11:oracle-prod:library",
                  "credit",
                  "WO:2026-11:oracle-prod:library",
                  "library",
                  "oracle-prod",
                  "2026-11",
                  {"INC0002", "INC0003"},
                  "",
                  235,
                  parse_instant("2026-12-09T16:00:00Z"),
                  {"CHG0002"}},
                 {"WO:2026-11:oracle-prod:library#7",
                  "adjustment",
                  "WO:2026-11:oracle-prod:library",
                  "library",
                  "oracle-prod",
                  "2026-11",
                  {"INC0002", "INC0003"},
                  "DSP-000001",
                  99765,
                  parse_instant("2026-12-10T16:00:00Z"),
                  {"CHG0002"}}};
  const Invoice first = compute_invoice(dec);
  ASSERT_EQ(first.lines.size(), 4u);
  EXPECT_EQ(first.lines[1].amount_cents, -235);
  // DOMAIN.md §4: the incident numbers and the maintenance ids that made up the downtime.
  EXPECT_EQ(first.lines[1].description,
            "SLA credit WO:2026-11:oracle-prod:library (oracle-prod, 2026-11: INC0002, INC0003; "
            "maintenance CHG0002)");
  EXPECT_EQ(first.lines[1].reference, "INC0002 INC0003 CHG0002");
  EXPECT_EQ(first.lines[1].sources["credit"]["maintenance"], Json::array({"CHG0002"}));
  EXPECT_EQ(first.lines[2].kind, "adjustment");
  EXPECT_EQ(first.lines[2].amount_cents, -99765);
  // 900.00 - 2.35 - 997.65 = -100.00: the invoice is 0 and 100.00 waits for the next one.
  EXPECT_EQ(first.lines[3].kind, "carry_forward");
  EXPECT_EQ(first.lines[3].amount_cents, 10000);
  EXPECT_EQ(first.total_cents, 0);
  EXPECT_EQ(first.carry_out_cents, 10000);
  EXPECT_EQ(first.charges_cents, 90000);
  EXPECT_EQ(first.credits_cents, 100000);

  InvoiceInput jan = input(rc, "2027-01", c);
  jan.carry_in_cents = first.carry_out_cents;
  jan.carry_in_from = "INV-FY2027-000004";
  const Invoice second = compute_invoice(jan);
  ASSERT_EQ(second.lines.size(), 2u);
  EXPECT_EQ(second.lines[1].kind, "carry_in");
  EXPECT_EQ(second.lines[1].description, "Credit brought forward from INV-FY2027-000004");
  EXPECT_EQ(second.total_cents, 80000);
  EXPECT_EQ(second.carry_out_cents, 0);
}

TEST(Billing, ADisputeThatLowersACreditIsBilledBack) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-12", Customer{"library", "Libraries", "LIB-200", {}, {}});
  in.credits = {{"c#9",
                 "adjustment",
                 "c",
                 "library",
                 "oracle-prod",
                 "2026-11",
                 {"INC0002"},
                 "DSP-000002",
                 -100,
                 parse_instant("2026-12-10T16:00:00Z"),
                 {}}};
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 1u);
  EXPECT_EQ(inv.lines[0].amount_cents, 100);
  EXPECT_EQ(inv.total_cents, 100);
}

// The line kinds' order (credit, then adjustment), each kind by approval time then id: an
// adjustment approved before a credit still follows it.
TEST(Billing, CreditLinesComeBeforeAdjustmentLines) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-12", Customer{"library", "Libraries", "LIB-200", {}, {}});
  auto item = [](const char* id, const char* kind, std::int64_t cents, const char* at) {
    return CreditItem{id,
                      kind,
                      "WO:2026-11:oracle-prod:library",
                      "library",
                      "oracle-prod",
                      "2026-11",
                      {"INC0002"},
                      std::string(kind) == "adjustment" ? "DSP-000001" : "",
                      cents,
                      parse_instant(at),
                      {}};
  };
  in.credits = {item("x#1", "adjustment", 50, "2026-12-02T16:00:00Z"),
                item("y", "credit", 120, "2026-12-09T16:00:00Z"),
                item("z", "credit", 80, "2026-12-01T16:00:00Z")};
  const Invoice inv = compute_invoice(in);
  ASSERT_EQ(inv.lines.size(), 4u);
  EXPECT_EQ(inv.lines[0].kind, "credit");
  EXPECT_EQ(inv.lines[0].amount_cents, -80);
  EXPECT_EQ(inv.lines[1].kind, "credit");
  EXPECT_EQ(inv.lines[1].amount_cents, -120);
  EXPECT_EQ(inv.lines[2].kind, "adjustment");
  EXPECT_EQ(inv.lines[3].kind, "carry_forward");  // no charges: the credits wait
}

TEST(Billing, AnEntryBeforeEveryRateCardCannotBePriced) {
  const auto rc = cards();
  InvoiceInput in = input(rc, "2026-08", Customer{"registrar", "Registrar", "REG-100", {}, {}});
  in.time_entries = {entry("old", "2026-08-31", 30)};
  try {
    compute_invoice(in);
    FAIL() << "priced without a rate card";
  } catch (const PricingError& e) {
    EXPECT_EQ(std::string(e.what()),
              "time entry old is dated 2026-08-31, before the first rate card: add a rate card "
              "valid from that date");
  }
}

TEST(Billing, TheEstimatePricesTheComingYearAndComparesItWithTheCurrentOne) {
  const auto rc = cards();
  EstimateInput in;
  in.customer = {"registrar",
                 "Registrar",
                 "REG-100",
                 {sub("oracle-prod", 150000, "2025-09-01T05:00:00Z")},
                 {}};
  in.service_names = {{"oracle-prod", "Oracle database (Production)"}};
  in.fiscal_year = 2028;
  in.zone = chicago();
  in.rate_cards = &rc;
  in.made_on = parse_date("2027-06-01");
  // The window is June 2026 to May 2027: 13 included-support entries of 100 minutes (105
  // each when rounded: 1,365, 165 above the 20 hours) and one billable hour; an entry of May
  // 2026 and one of June 2027 are outside.
  for (int i = 0; i < 13; ++i)
    in.time_entries.push_back(entry("i" + std::to_string(i), "2026-10-05", 100));
  in.time_entries.push_back(entry("b", "2027-05-31", 60, WorkKind::billable));
  in.time_entries.push_back(entry("before", "2026-05-31", 600));
  in.time_entries.push_back(entry("after", "2027-06-01", 600));
  in.oncall = {{"OC-1", "registrar", parse_date("2026-12-28"), parse_date("2027-01-06"),
                parse_date("2026-12-01"), "", "scheduled"}};
  const Json e = compute_estimate(in);
  EXPECT_EQ(e["period"]["start"], "2027-09-01");
  EXPECT_EQ(e["period"]["end"], "2028-08-31");
  EXPECT_EQ(e["time"]["window"]["start"], "2026-06-01");
  EXPECT_EQ(e["time"]["window"]["end"], "2027-05-31");
  EXPECT_EQ(e["subscriptions"][0]["months"], 12);
  EXPECT_EQ(e["subscriptions"][0]["monthly_charge_cents"], 165000);  // the FY2028 list price
  EXPECT_EQ(e["subscriptions"][0]["amount_cents"], 1980000);
  EXPECT_EQ(e["time"]["rounded_minutes"], 1425);  // 13 × 105 + 60
  EXPECT_EQ(e["time"]["included_minutes"], 1200);
  EXPECT_EQ(e["time"]["billed_minutes"], 225);
  EXPECT_EQ(e["time"]["amount_cents"], 37500);  // 225 min at 100.00
  EXPECT_EQ(e["oncall"]["weeks"], 2);
  EXPECT_EQ(e["oncall"]["amount_cents"], 44800);
  EXPECT_EQ(e["total_cents"], 2062300);
  // The same volumes at FY2027's prices: 12 × 1,500.00 + 225 min at 95.00 (356.25) + 448.00.
  EXPECT_EQ(e["current_year_cents"], 1880425);
  EXPECT_EQ(e["change_cents"], 181875);
  EXPECT_EQ(e["change_basis_points"], 967);  // 9.67 %: below the 10 % threshold
  EXPECT_EQ(e["significant"], false);
  in.significant_basis_points = 967;
  EXPECT_EQ(compute_estimate(in)["significant"], true);
}

// A subscription replaced in the middle of October: October is billed once, by the new one,
// and the estimate counts it so: 1 + 11 months, not 2 + 11.
TEST(Billing, TheEstimateCountsAMonthTwoSubscriptionsShareOnceAsItIsBilled) {
  const auto rc = cards();
  EstimateInput in;
  in.customer = {"registrar",
                 "Registrar",
                 "REG-100",
                 {sub("oracle-prod", 150000, "2025-09-01T05:00:00Z", "2027-10-15T05:00:00Z"),
                  sub("oracle-prod", 150000, "2027-10-15T05:00:00Z")},
                 {}};
  in.fiscal_year = 2028;
  in.zone = chicago();
  in.rate_cards = &rc;
  in.made_on = parse_date("2027-06-01");
  const Json e = compute_estimate(in);
  ASSERT_EQ(e["subscriptions"].size(), 2u);
  EXPECT_EQ(e["subscriptions"][0]["months"], 1);
  EXPECT_EQ(e["subscriptions"][1]["months"], 11);
  EXPECT_EQ(e["total_cents"], 12 * 165000);
  EXPECT_EQ(e["current_year_cents"], 12 * 150000);
}

}  // namespace
}  // namespace slmhub::billing
