// The dataset codecs: the example dataset read field by field, the round trip, and every
// validation rule of DESIGN.md §5.3 with the exact JSON path it reports.
#include "slmhub/domain.hpp"
#include "test_files.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace slmhub {
namespace {

using date::year;

Json example_json() { return parse_json(test::read_shared("vectors/example-2026-11.json")); }

Instant at(const char* text) { return parse_instant(text); }

std::string describe(const std::vector<FieldError>& errors) {
  std::string text;
  for (const auto& e : errors) text += e.path + ": " + e.message + "\n";
  return text;
}

// The errors parse_dataset reports for `json` (empty if it accepts it).
std::vector<FieldError> dataset_errors(const Json& json) {
  try {
    parse_dataset(json);
  } catch (const ValidationError& e) {
    return e.errors();
  }
  return {};
}

// Asserts that exactly one error names `path` and that its message is `message`.
void expect_error(const std::vector<FieldError>& errors, const std::string& path,
                  const std::string& message) {
  int matches = 0;
  for (const auto& e : errors) {
    if (e.path == path) {
      ++matches;
      EXPECT_EQ(e.message, message) << "at " << path;
    }
  }
  EXPECT_EQ(matches, 1) << "no single error at " << path << "; got:\n" << describe(errors);
}

// As expect_error, with `fragment` somewhere in the message (for text from the time library).
void expect_error_containing(const std::vector<FieldError>& errors, const std::string& path,
                             const std::string& fragment) {
  int matches = 0;
  for (const auto& e : errors) {
    if (e.path == path) {
      ++matches;
      EXPECT_NE(e.message.find(fragment), std::string::npos) << e.message;
    }
  }
  EXPECT_EQ(matches, 1) << "no single error at " << path << "; got:\n" << describe(errors);
}

// ---- the example dataset -----------------------------------------------------------------

TEST(ExampleDataset, TopLevelAndCalendar) {
  const Dataset d = parse_dataset(example_json());
  EXPECT_EQ(d.timezone, "America/Chicago");
  EXPECT_EQ(d.fiscal_year_start_month, 9);
  EXPECT_EQ(d.provider_calendar, "business");

  ASSERT_EQ(d.calendars.size(), 1u);
  const CalendarDef& c = d.calendars[0];
  EXPECT_EQ(c.id, "business");
  EXPECT_EQ(c.timezone, "America/Chicago");
  EXPECT_EQ(c.hours[0], std::nullopt);  // Sunday
  for (std::size_t day = 1; day <= 5; ++day) EXPECT_EQ(c.hours[day], (DayHours{480, 1020}));
  EXPECT_EQ(c.hours[6], std::nullopt);  // Saturday
  EXPECT_EQ(c.holidays,
            (std::set<date::year_month_day>{year{2026} / 11 / 26, year{2026} / 11 / 27,
                                            year{2026} / 12 / 24, year{2026} / 12 / 25}));

  const BusinessCalendar calendar = c.to_calendar();
  EXPECT_EQ(calendar.id(), "business");
  EXPECT_TRUE(calendar.is_business_day(year{2026} / 11 / 25));
  EXPECT_FALSE(calendar.is_business_day(year{2026} / 11 / 26));  // holiday
  EXPECT_FALSE(calendar.is_business_day(year{2026} / 11 / 28));  // Saturday
}

// A budget's seconds (hours * 3600) must fit in 64 bits: 5,124,095,576,030,432 hours wrapped
// to under an hour, and a pre-approved outage counted as downtime.
TEST(ExampleDataset, AMaintenanceBudgetsSecondsFitIn64Bits) {
  Json j = example_json();
  const std::int64_t largest = std::numeric_limits<std::int64_t>::max() / 3600;
  j["services"][0]["maintenance_budget_hours_per_fy"] = largest;
  EXPECT_EQ(parse_dataset(j).services[0].maintenance_budget_hours_per_fy, largest);
  j["services"][0]["maintenance_budget_hours_per_fy"] = 5124095576030432;
  try {
    parse_dataset(j);
    ADD_FAILURE() << "accepted";
  } catch (const ValidationError& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].path, "$.services[0].maintenance_budget_hours_per_fy");
  }
}

TEST(ExampleDataset, Services) {
  const Dataset d = parse_dataset(example_json());
  ASSERT_EQ(d.services.size(), 2u);
  const Service& oracle = d.services[0];
  EXPECT_EQ(oracle.id, "oracle-prod");
  EXPECT_EQ(oracle.name, "Oracle database (Production)");
  EXPECT_EQ(oracle.environment, Environment::production);
  EXPECT_EQ(oracle.hours, "24x7");
  EXPECT_EQ(oracle.target_thousandths, 99750);
  EXPECT_EQ(oracle.timezone, std::nullopt);
  EXPECT_EQ(oracle.maintenance_budget_hours_per_fy, 40);
  EXPECT_EQ(oracle.credit_policy, std::nullopt);

  const Service& mysql = d.services[1];
  EXPECT_EQ(mysql.id, "mysql-qa");
  EXPECT_EQ(mysql.name, "MySQL database (QA)");
  EXPECT_EQ(mysql.environment, Environment::qa);
  EXPECT_EQ(mysql.hours, "business");
  EXPECT_EQ(mysql.target_thousandths, 99570);
  EXPECT_EQ(mysql.maintenance_budget_hours_per_fy, 40);  // the default

  ASSERT_TRUE(d.credit_policy.has_value());
  EXPECT_EQ(d.credit_policy->type, CreditPolicyType::proportional);
  EXPECT_EQ(d.credit_policy->cap_thousandths, 100000);
  EXPECT_TRUE(d.credit_policy->tiers.empty());
}

TEST(ExampleDataset, Customers) {
  const Dataset d = parse_dataset(example_json());
  ASSERT_EQ(d.customers.size(), 2u);
  const Customer& registrar = d.customers[0];
  EXPECT_EQ(registrar.id, "registrar");
  EXPECT_EQ(registrar.name, "Office of the Registrar");
  EXPECT_EQ(registrar.billing_code, "REG-100");
  EXPECT_TRUE(registrar.contacts.empty());
  EXPECT_EQ(
      registrar.subscriptions,
      (std::vector<Subscription>{{"oracle-prod", 150000, at("2025-09-01T05:00:00Z"), std::nullopt},
                                 {"mysql-qa", 40000, at("2025-09-01T05:00:00Z"), std::nullopt}}));
  const Customer& library = d.customers[1];
  EXPECT_EQ(library.id, "library");
  EXPECT_EQ(library.name, "University Libraries");
  EXPECT_EQ(library.billing_code, "LIB-200");
  EXPECT_EQ(library.subscriptions,
            (std::vector<Subscription>{
                {"oracle-prod", 90000, at("2026-01-01T06:00:00Z"), std::nullopt}}));
}

TEST(ExampleDataset, MaintenanceAndInterruptions) {
  const Dataset d = parse_dataset(example_json());
  EXPECT_EQ(d.maintenance, (std::vector<MaintenanceWindow>{
                               {"CHG0001", "oracle-prod", MaintenanceCategory::planned_outage,
                                at("2026-11-08T08:00:00Z"), at("2026-11-08T12:00:00Z"),
                                at("2026-10-20T15:00:00Z"), MaintenanceStatus::scheduled},
                               {"CHG0002", "oracle-prod", MaintenanceCategory::planned_outage,
                                at("2026-11-15T08:00:00Z"), at("2026-11-15T10:00:00Z"),
                                at("2026-11-10T15:00:00Z"), MaintenanceStatus::scheduled},
                               {"CHG0003", "mysql-qa", MaintenanceCategory::planned_non_disruptive,
                                at("2026-11-10T15:00:00Z"), at("2026-11-10T16:00:00Z"),
                                at("2026-11-02T15:00:00Z"), MaintenanceStatus::scheduled}}));
  EXPECT_EQ(d.interruptions, (std::vector<Interruption>{{"INC0001",
                                                         "oracle-prod",
                                                         InterruptionType::outage,
                                                         at("2026-11-03T14:00:00Z"),
                                                         at("2026-11-03T14:50:00Z"),
                                                         {"registrar"},
                                                         std::nullopt},
                                                        {"INC0002",
                                                         "oracle-prod",
                                                         InterruptionType::outage,
                                                         at("2026-11-03T14:30:00Z"),
                                                         at("2026-11-03T15:10:00Z"),
                                                         {},
                                                         std::nullopt},
                                                        {"INC0003",
                                                         "oracle-prod",
                                                         InterruptionType::outage,
                                                         at("2026-11-08T11:00:00Z"),
                                                         at("2026-11-08T13:00:00Z"),
                                                         {},
                                                         std::nullopt},
                                                        {"INC0004",
                                                         "mysql-qa",
                                                         InterruptionType::outage,
                                                         at("2026-11-25T22:00:00Z"),
                                                         at("2026-11-30T15:00:00Z"),
                                                         {"registrar"},
                                                         std::nullopt},
                                                        {"INC0005",
                                                         "oracle-prod",
                                                         InterruptionType::degradation,
                                                         at("2026-11-20T14:00:00Z"),
                                                         at("2026-11-20T18:00:00Z"),
                                                         {},
                                                         std::nullopt}}));
}

TEST(ExampleDataset, RoundTripsKeyForKeyModuloDefaults) {
  const Json input = example_json();
  const Dataset d = parse_dataset(input);

  // The input plus the defaults the writer spells out.
  Json expected = input;
  expected["services"][1]["maintenance_budget_hours_per_fy"] = 40;
  for (auto& customer : expected["customers"]) customer["contacts"] = Json::array();
  for (auto& window : expected["maintenance"]) window["status"] = "scheduled";

  const Json written = to_json(d);
  EXPECT_EQ(written, expected) << Json::diff(expected, written).dump(2);
  EXPECT_EQ(written["services"][0]["target_percent"].dump(), "99.75");
  EXPECT_EQ(written["services"][1]["target_percent"].dump(), "99.57");
  EXPECT_EQ(written["credit_policy"]["cap_percent"].dump(), "100");

  EXPECT_EQ(parse_dataset(written), d);
  EXPECT_EQ(to_json(parse_dataset(parse_json(written.dump()))).dump(), written.dump());
}

TEST(Dataset, MinimalDatasetUsesDefaults) {
  const Dataset d = parse_dataset(parse_json(R"({"timezone": "UTC"})"));
  EXPECT_EQ(d.fiscal_year_start_month, 9);
  EXPECT_EQ(d.provider_calendar, std::nullopt);
  EXPECT_EQ(d.credit_policy, std::nullopt);
  EXPECT_TRUE(d.services.empty());
  EXPECT_TRUE(d.interruptions.empty());
}

// ---- entity round trips with every optional field present --------------------------------

TEST(EntityCodecs, FullyPopulatedEntitiesRoundTrip) {
  const Json service = parse_json(R"json({"id": "mssql-dev", "name": "MSSQL (Dev)",
      "environment": "development", "hours": "business", "target_percent": 99.999,
      "timezone": "Europe/Berlin", "maintenance_budget_hours_per_fy": 0,
      "credit_policy": {"type": "tiered", "cap_percent": 50,
        "tiers": [{"below_percent": 99.5, "credit_percent": 10},
                  {"below_percent": 99, "credit_percent": 25.5}]}})json");
  const Service s = parse_service(service);
  EXPECT_EQ(s.environment, Environment::development);
  EXPECT_EQ(s.target_thousandths, 99999);
  EXPECT_EQ(s.timezone, "Europe/Berlin");
  EXPECT_EQ(s.maintenance_budget_hours_per_fy, 0);
  ASSERT_TRUE(s.credit_policy.has_value());
  EXPECT_EQ(s.credit_policy->type, CreditPolicyType::tiered);
  EXPECT_EQ(s.credit_policy->cap_thousandths, 50000);
  EXPECT_EQ(s.credit_policy->tiers, (std::vector<CreditTier>{{99500, 10000}, {99000, 25500}}));
  EXPECT_EQ(to_json(s), service);

  const Json customer = parse_json(R"({"id": "dmv", "name": "Motor Vehicles",
      "billing_code": "DMV-1", "subscriptions": [{"service": "mssql-dev",
        "monthly_charge_cents": 0, "start": "2026-01-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z"}],
      "contacts": [{"role": "outage", "name": "Ops desk", "email": "ops@example.org"},
                   {"role": "billing", "name": "Accounts", "email": "ap@example.org"}]})");
  const Customer c = parse_customer(customer);
  EXPECT_EQ(c.contacts[0].role, ContactRole::outage);
  EXPECT_EQ(c.subscriptions[0].end, at("2027-01-01T00:00:00Z"));
  EXPECT_EQ(to_json(c), customer);

  const Json window = parse_json(R"({"id": "CHG9", "service": "mssql-dev",
      "category": "emergency", "start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00Z",
      "status": "complete"})");
  const MaintenanceWindow m = parse_maintenance_window(window);
  EXPECT_EQ(m.announced_at, std::nullopt);
  EXPECT_EQ(m.status, MaintenanceStatus::complete);
  EXPECT_EQ(to_json(m), window);

  // Open interruption, instant with an offset written back in UTC.
  const Interruption i = parse_interruption(parse_json(
      R"({"id": "INC9", "service": "mssql-dev", "type": "outage",
          "start": "2026-11-01T08:00:00+02:00"})"));
  EXPECT_EQ(i.end, std::nullopt);
  EXPECT_EQ(to_json(i), parse_json(R"({"id": "INC9", "service": "mssql-dev", "type": "outage",
                                       "start": "2026-11-01T06:00:00Z"})"));

  const Json calendar = parse_json(R"({"id": "weekend", "timezone": "UTC",
      "hours": {"sat": ["00:00", "24:00"], "sun": ["10:30", "12:00"]}, "holidays": []})");
  const CalendarDef cal = parse_calendar(calendar);
  EXPECT_EQ(cal.hours[6], (DayHours{0, 1440}));
  EXPECT_EQ(cal.hours[0], (DayHours{630, 720}));
  EXPECT_EQ(to_json(cal), calendar);
}

TEST(Enums, NamesRoundTrip) {
  for (const auto& e : kEnvironmentNames) {
    EXPECT_EQ(to_string(e.value), e.name);
    EXPECT_EQ(parse_environment(e.name), e.value);
  }
  for (const auto& e : kContactRoleNames)
    EXPECT_EQ(parse_contact_role(to_string(e.value)), e.value);
  for (const auto& e : kInterruptionTypeNames) {
    EXPECT_EQ(parse_interruption_type(to_string(e.value)), e.value);
  }
  for (const auto& e : kMaintenanceCategoryNames) {
    EXPECT_EQ(parse_maintenance_category(to_string(e.value)), e.value);
  }
  for (const auto& e : kMaintenanceStatusNames) {
    EXPECT_EQ(parse_maintenance_status(to_string(e.value)), e.value);
  }
  for (const auto& e : kCreditPolicyTypeNames) {
    EXPECT_EQ(parse_credit_policy_type(to_string(e.value)), e.value);
  }
  EXPECT_EQ(parse_environment("prod"), std::nullopt);
  EXPECT_EQ(to_string(ContactRole::technical_secondary), "technical_secondary");
  EXPECT_EQ(to_string(MaintenanceCategory::expedited_non_disruptive), "expedited_non_disruptive");
}

// ---- validation rules --------------------------------------------------------------------

TEST(DatasetValidation, TheExampleIsValid) { EXPECT_TRUE(dataset_errors(example_json()).empty()); }

TEST(DatasetValidation, UnknownServiceOnAnInterruptionIsTheWholeMessage) {
  Json j = example_json();
  j["interruptions"][3]["service"] = "oracle-prd";
  try {
    parse_dataset(j);
    FAIL() << "accepted";
  } catch (const ValidationError& e) {
    EXPECT_STREQ(e.what(),
                 "$.interruptions[3].service: unknown service 'oracle-prd' (known: mysql-qa, "
                 "oracle-prod)");
  }
}

TEST(DatasetValidation, DuplicateIdsPerKind) {
  Json j = example_json();
  j["calendars"].push_back(j["calendars"][0]);
  j["services"].push_back(j["services"][0]);
  j["customers"].push_back(j["customers"][0]);
  j["maintenance"][2]["id"] = "CHG0001";
  j["interruptions"][4]["id"] = "INC0002";
  // Ids are unique per kind: a change may share its id with a service.
  j["maintenance"][1]["id"] = "oracle-prod";
  const auto errors = dataset_errors(j);
  expect_error(errors, "$.calendars[1].id",
               "duplicate calendar id 'business' (first at $.calendars[0])");
  expect_error(errors, "$.services[2].id",
               "duplicate service id 'oracle-prod' (first at $.services[0])");
  expect_error(errors, "$.customers[2].id",
               "duplicate customer id 'registrar' (first at $.customers[0])");
  expect_error(errors, "$.maintenance[2].id",
               "duplicate maintenance window id 'CHG0001' (first at $.maintenance[0])");
  expect_error(errors, "$.interruptions[4].id",
               "duplicate interruption id 'INC0002' (first at $.interruptions[1])");
  EXPECT_EQ(errors.size(), 5u) << describe(errors);
}

// Every repeat names the first occurrence, and the errors come in list order, among
// thousands of ids.
TEST(DatasetValidation, EveryRepeatOfAnInterruptionIdNamesTheFirst) {
  Json j = example_json();
  const Json one = j["interruptions"][0];
  j["interruptions"] = Json::array();
  for (int n = 0; n < 5000; ++n) {
    Json i = one;
    i["id"] = "INC" + std::to_string(n % 2000);  // INC0-INC999 three times, the rest twice
    j["interruptions"].push_back(i);
  }
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3000u) << describe(errors).substr(0, 2000);
  EXPECT_EQ(errors.front().path, "$.interruptions[2000].id");
  EXPECT_EQ(errors.front().message,
            "duplicate interruption id 'INC0' (first at $.interruptions[0])");
  EXPECT_EQ(errors[2000].path, "$.interruptions[4000].id");
  EXPECT_EQ(errors[2000].message, "duplicate interruption id 'INC0' (first at $.interruptions[0])");
  EXPECT_EQ(errors.back().path, "$.interruptions[4999].id");
  EXPECT_EQ(errors.back().message,
            "duplicate interruption id 'INC999' (first at $.interruptions[999])");
}

// Ids issued in order are checked in one pass; a repeat anywhere, even right after the id
// it repeats or as the last id, still names the first.
TEST(DatasetValidation, ARepeatAmongIdsInOrderIsFound) {
  Json j = example_json();
  const Json one = j["interruptions"][0];
  for (const int repeat_at : {1, 3000, 4999}) {
    j["interruptions"] = Json::array();
    for (int n = 0; n < 5000; ++n) {
      Json i = one;
      char id[16];
      std::snprintf(id, sizeof id, "INC%07d", n == repeat_at ? n - 1 : n);
      i["id"] = id;
      j["interruptions"].push_back(i);
    }
    const auto errors = dataset_errors(j);
    ASSERT_EQ(errors.size(), 1u) << describe(errors);
    char expected[96];
    std::snprintf(expected, sizeof expected,
                  "duplicate interruption id 'INC%07d' (first at $.interruptions[%d])",
                  repeat_at - 1, repeat_at - 1);
    expect_error(errors, "$.interruptions[" + std::to_string(repeat_at) + "].id", expected);
  }
}

TEST(DatasetValidation, ServiceHoursNamingAnUnknownCalendar) {
  Json j = example_json();
  j["services"][1]["hours"] = "busines";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  expect_error(errors, "$.services[1].hours",
               "unknown calendar 'busines' (known: business; or \"24x7\" for round-the-clock "
               "service)");
}

TEST(DatasetValidation, UnknownProviderCalendar) {
  Json j = example_json();
  j["provider_calendar"] = "office";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  expect_error(errors, "$.provider_calendar", "unknown calendar 'office' (known: business)");
}

TEST(DatasetValidation, CalendarIdCannotBe24x7) {
  Json j = example_json();
  j["calendars"][0]["id"] = "24x7";
  j["provider_calendar"] = "24x7";
  j["services"][1]["hours"] = "24x7";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  expect_error(errors, "$.calendars[0].id",
               "the id '24x7' is reserved for round-the-clock service hours");
}

TEST(DatasetValidation, UnknownTimeZones) {
  Json j = example_json();
  j["timezone"] = "America/Chicgo";
  j["calendars"][0]["timezone"] = "Mars/Olympus";
  j["services"][0]["timezone"] = "CST";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  expect_error_containing(errors, "$.timezone", "'America/Chicgo': unknown time zone");
  expect_error_containing(errors, "$.calendars[0].timezone", "'Mars/Olympus': unknown time zone");
  expect_error_containing(errors, "$.services[0].timezone", "'CST': unknown time zone");
}

TEST(DatasetValidation, ReferencesToUnknownServicesAndCustomers) {
  Json j = example_json();
  j["customers"][1]["subscriptions"][0]["service"] = "oracle-dev";
  j["maintenance"][2]["service"] = "mysql-prod";
  j["interruptions"][0]["service"] = "mssql-prod";
  j["interruptions"][3]["customers"] = {"registrar", "libary"};
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  expect_error(errors, "$.customers[1].subscriptions[0].service",
               "unknown service 'oracle-dev' (known: mysql-qa, oracle-prod)");
  expect_error(errors, "$.maintenance[2].service",
               "unknown service 'mysql-prod' (known: mysql-qa, oracle-prod)");
  expect_error(errors, "$.interruptions[0].service",
               "unknown service 'mssql-prod' (known: mysql-qa, oracle-prod)");
  expect_error(errors, "$.interruptions[3].customers[1]",
               "unknown customer 'libary' (known: library, registrar)");
}

// Where check_references found each reference of the long lists: the position of what it
// names, the first of a repeated id, and kUnresolved for what names nothing.
TEST(DatasetReferences, PositionsOfWhatEachReferenceNames) {
  Json j = example_json();
  j["services"].push_back(j["services"][0]);  // a repeated id: its first position is named
  j["interruptions"][0]["service"] = "mssql-prod";
  j["interruptions"][3]["customers"] = {"registrar", "libary"};
  std::vector<FieldError> errors;
  const Dataset d = dataset_from_json(j, "$", errors);
  errors.clear();
  DatasetReferences refs;
  check_references(d, "$", errors, &refs);
  EXPECT_EQ(errors.size(), 3u) << describe(errors);  // the repeat and the two unknown names
  EXPECT_EQ(refs, resolve_references(d));

  constexpr uint32_t kNone = DatasetReferences::kUnresolved;
  ASSERT_EQ(refs.maintenance_service.size(), d.maintenance.size());
  for (std::size_t i = 0; i < d.maintenance.size(); ++i) {
    ASSERT_NE(refs.maintenance_service[i], kNone) << i;
    EXPECT_EQ(d.services[refs.maintenance_service[i]].id, d.maintenance[i].service) << i;
    EXPECT_LT(refs.maintenance_service[i], d.services.size() - 1) << "the repeat is never named";
  }
  ASSERT_EQ(refs.interruption_service.size(), d.interruptions.size());
  ASSERT_EQ(refs.named_first.size(), d.interruptions.size() + 1);
  EXPECT_EQ(refs.interruption_service[0], kNone);
  for (std::size_t i = 1; i < d.interruptions.size(); ++i) {
    ASSERT_NE(refs.interruption_service[i], kNone) << i;
    EXPECT_EQ(d.services[refs.interruption_service[i]].id, d.interruptions[i].service) << i;
  }
  for (std::size_t i = 0; i < d.interruptions.size(); ++i) {
    ASSERT_EQ(refs.named_first[i + 1] - refs.named_first[i], d.interruptions[i].customers.size());
    for (std::size_t k = 0; k < d.interruptions[i].customers.size(); ++k) {
      const uint32_t position = refs.named[refs.named_first[i] + k];
      if (i == 3 && k == 1) {
        EXPECT_EQ(position, kNone);  // "libary"
        continue;
      }
      ASSERT_NE(position, kNone) << i << "/" << k;
      EXPECT_EQ(d.customers[position].id, d.interruptions[i].customers[k]);
    }
  }
}

TEST(DatasetValidation, EndMustBeAfterStart) {
  Json j = example_json();
  j["interruptions"][1]["end"] = "2026-11-03T14:30:00Z";  // equal to start
  j["maintenance"][0]["end"] = "2026-11-08T07:00:00Z";    // before start
  j["customers"][0]["subscriptions"][0]["end"] = "2025-08-01T00:00:00Z";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  expect_error(errors, "$.interruptions[1].end",
               "end 2026-11-03T14:30:00Z must be after start 2026-11-03T14:30:00Z");
  expect_error(errors, "$.maintenance[0].end",
               "end 2026-11-08T07:00:00Z must be after start 2026-11-08T08:00:00Z");
  expect_error(errors, "$.customers[0].subscriptions[0].end",
               "end 2025-08-01T00:00:00Z must be after start 2025-09-01T05:00:00Z");
}

TEST(DatasetValidation, FiscalYearStartMonthOutsideOneToTwelve) {
  for (int month : {0, 13, -1}) {
    Json j = example_json();
    j["fiscal_year_start_month"] = month;
    const auto errors = dataset_errors(j);
    ASSERT_EQ(errors.size(), 1u) << describe(errors);
    expect_error(errors, "$.fiscal_year_start_month",
                 "must be between 1 and 12, found " + std::to_string(month));
  }
  Json j = example_json();
  j["fiscal_year_start_month"] = 1;
  EXPECT_EQ(parse_dataset(j).fiscal_year_start_month, 1);
}

TEST(DatasetValidation, CreditPolicyRules) {
  Json j = example_json();
  j["credit_policy"] = {{"type", "tiered"}};
  j["services"][0]["credit_policy"] = {{"type", "proportional"},
                                       {"tiers", {{{"below_percent", 99}, {"credit_percent", 5}}}}};
  j["services"][1]["credit_policy"] = {{"type", "tiered"},
                                       {"cap_percent", 150},
                                       {"tiers",
                                        {{{"below_percent", 99.5}, {"credit_percent", 5}},
                                         {{"below_percent", 99.5}, {"credit_percent", 10}}}}};
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  expect_error(errors, "$.credit_policy.tiers",
               "a tiered policy needs at least one tier {below_percent, credit_percent}");
  expect_error(errors, "$.services[0].credit_policy.tiers",
               "tiers apply only to a tiered policy; this one is proportional");
  expect_error(errors, "$.services[1].credit_policy.cap_percent",
               "a percentage must be at most 100, found 150");
  expect_error(errors, "$.services[1].credit_policy.tiers[1].below_percent",
               "tiers[0] already applies below 99.5 %");
}

TEST(DatasetValidation, MoneyOutOfRange) {
  Json j = example_json();
  j["customers"][0]["subscriptions"][1]["monthly_charge_cents"] = -40000;
  j["customers"][1]["subscriptions"][0]["monthly_charge_cents"] = 900.5;
  // Sums of charges like this one would overflow.
  j["customers"][0]["subscriptions"][0]["monthly_charge_cents"] = 5'000'000'000'000'000'000;
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  expect_error(errors, "$.customers[0].subscriptions[0].monthly_charge_cents",
               "must be between 0 and 10000000000, found 5000000000000000000");
  expect_error(errors, "$.customers[0].subscriptions[1].monthly_charge_cents",
               "must be between 0 and 10000000000, found -40000");
  expect_error(errors, "$.customers[1].subscriptions[0].monthly_charge_cents",
               "expected integer, found number 900.5");
}

TEST(DatasetValidation, UnknownKeysAtEveryLevel) {
  Json j = example_json();
  j["timezon"] = "UTC";
  j["services"][0]["target_percnt"] = 50;
  j["calendars"][0]["hours"]["monday"] = {"08:00", "17:00"};
  j["customers"][0]["subscriptions"][0]["discount"] = 10;
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  expect_error(errors, "$.timezon",
               "unknown key (allowed: calendars, credit_policy, customers, "
               "fiscal_year_start_month, interruptions, maintenance, provider_calendar, "
               "services, timezone)");
  expect_error(errors, "$.services[0].target_percnt",
               "unknown key (allowed: credit_policy, environment, hours, id, "
               "maintenance_budget_hours_per_fy, name, target_percent, timezone)");
  expect_error(errors, "$.calendars[0].hours.monday",
               "unknown key (allowed: fri, mon, sat, sun, thu, tue, wed)");
  expect_error(errors, "$.customers[0].subscriptions[0].discount",
               "unknown key (allowed: end, monthly_charge_cents, service, start)");
}

TEST(DatasetValidation, WrongTypesAndBadValues) {
  Json j = example_json();
  j["services"][0]["target_percent"] = "99.75";
  j["services"][1]["environment"] = "prod";
  j["maintenance"][0]["category"] = "planned";
  j["maintenance"][1]["status"] = "done";
  j["interruptions"][2]["type"] = "down";
  j["interruptions"][4]["start"] = "2026-11-20T14:00:00";  // no offset
  j["calendars"][0]["holidays"][1] = "2026-11-31";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 7u) << describe(errors);
  expect_error(errors, "$.services[0].target_percent",
               "expected number (a percentage), found string");
  expect_error(errors, "$.services[1].environment",
               "unknown value 'prod' (allowed: production, qa, development)");
  expect_error(errors, "$.maintenance[0].category",
               "unknown value 'planned' (allowed: planned_outage, planned_non_disruptive, "
               "expedited_non_disruptive, emergency)");
  expect_error(errors, "$.maintenance[1].status",
               "unknown value 'done' (allowed: scheduled, complete, skipped, cancelled)");
  expect_error(errors, "$.interruptions[2].type",
               "unknown value 'down' (allowed: outage, degradation)");
  expect_error_containing(errors, "$.interruptions[4].start", "2026-11-20T14:00:00");
  expect_error_containing(errors, "$.calendars[0].holidays[1]", "2026-11-31");
}

TEST(DatasetValidation, CalendarHours) {
  Json j = example_json();
  j["calendars"][0]["hours"]["mon"] = {"8:00", "17:00"};
  j["calendars"][0]["hours"]["tue"] = {"17:00", "08:00"};
  j["calendars"][0]["hours"]["wed"] = {"08:00"};
  j["calendars"][0]["hours"]["thu"] = {"08:00", "24:01"};
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  expect_error(errors, "$.calendars[0].hours.mon[0]",
               "expected a time \"HH:MM\" from 00:00 to 24:00, found '8:00'");
  expect_error(errors, "$.calendars[0].hours.tue",
               "opening time 17:00 must be before closing time 08:00");
  expect_error(errors, "$.calendars[0].hours.wed",
               "expected [open, close] as two \"HH:MM\" strings, found an array of 1");
  expect_error(errors, "$.calendars[0].hours.thu[1]",
               "expected a time \"HH:MM\" from 00:00 to 24:00, found '24:01'");

  Json closed = example_json();
  closed["calendars"][0]["hours"] = Json::object();
  const auto closed_errors = dataset_errors(closed);
  ASSERT_EQ(closed_errors.size(), 1u) << describe(closed_errors);
  expect_error(closed_errors, "$.calendars[0].hours",
               "a calendar needs opening hours on at least one weekday (keys mon..sun)");
}

TEST(DatasetValidation, MissingRequiredKeysAndEmptyStrings) {
  Json j = example_json();
  j.erase("timezone");
  j["services"][0].erase("target_percent");
  j["interruptions"][0]["id"] = "";
  j["customers"][0].erase("billing_code");
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 4u) << describe(errors);
  expect_error(errors, "$.timezone", "required key is missing");
  expect_error(errors, "$.services[0].target_percent", "required key is missing");
  expect_error(errors, "$.interruptions[0].id", "must not be empty");
  expect_error(errors, "$.customers[0].billing_code", "required key is missing");
}

TEST(DatasetValidation, NonObjectsWhereObjectsBelong) {
  Json j = example_json();
  j["services"][1] = 42;
  j["customers"] = {{"id", "x"}};  // an object where the list belongs
  const auto errors = dataset_errors(j);
  // The broken service is one error; references to mysql-qa now fail too.
  expect_error(errors, "$.services[1]", "expected object, found integer");
  expect_error(errors, "$.customers", "expected array, found object");
  expect_error(errors, "$.maintenance[2].service",
               "unknown service 'mysql-qa' (known: oracle-prod)");

  EXPECT_EQ(dataset_errors(Json::array()).size(), 1u);
  expect_error(dataset_errors(Json::array()), "$", "expected object, found array");
}

TEST(DatasetValidation, ContactsAndInterruptionCustomers) {
  Json j = example_json();
  j["customers"][0]["contacts"] = {
      {{"role", "dba"}, {"name", "A"}, {"email", "a@example.org"}},
      {{"role", "billing"}, {"name", "B"}, {"email", "not an address"}}};
  j["interruptions"][0]["customers"] = {"registrar", "registrar"};
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  expect_error(errors, "$.customers[0].contacts[0].role",
               "unknown value 'dba' (allowed: technical_primary, technical_secondary, billing, "
               "executive, security, outage)");
  expect_error(errors, "$.customers[0].contacts[1].email",
               "expected an e-mail address (local@domain), found 'not an address'");
  expect_error(errors, "$.interruptions[0].customers[1]",
               "customer 'registrar' is already listed at index 0");
}

// One customer, one service, one subscription at a time: a change of charge ends one where the
// next starts; two active at once would leave one charge neither credited nor billed.
TEST(DatasetValidation, ACustomersSubscriptionsToOneServiceDoNotOverlap) {
  Json j = example_json()["customers"][0];
  Json& subscriptions = j["subscriptions"];
  const Json first = subscriptions[0];  // oracle-prod from 2025-09-01T05:00:00Z, no end
  const std::string service = first["service"];
  auto errors_of = [&] {
    std::vector<FieldError> errors;
    check_subscriptions_apart(parse_customer(j), "$.customers[0]", errors);
    return errors;
  };

  Json change = first;
  change["start"] = "2026-11-15T12:00:00Z";
  change["monthly_charge_cents"] = 99000;
  subscriptions[0]["end"] = "2026-11-15T12:00:00Z";
  subscriptions.push_back(change);
  EXPECT_TRUE(errors_of().empty()) << describe(errors_of());

  subscriptions[0]["end"] = "2026-11-15T12:00:01Z";
  auto errors = errors_of();
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  expect_error(errors, "$.customers[0].subscriptions[2]",
               "subscription to service '" + service +
                   "' from 2026-11-15T12:00:00Z with no end overlaps the one at index 0 (from "
                   "2025-09-01T05:00:00Z to 2026-11-15T12:00:01Z): a customer subscribes to a "
                   "service once at a time; end one where the next starts");

  // Listed in either order, and a later one that started first.
  subscriptions[0]["end"] = "2026-11-15T12:00:00Z";
  subscriptions[2].erase("start");
  subscriptions[2]["end"] = "2025-09-01T05:00:00Z";
  EXPECT_TRUE(errors_of().empty()) << describe(errors_of());
  subscriptions[2]["end"] = "2025-09-01T05:00:01Z";
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.customers[0].subscriptions[2]");

  // The same subscription listed twice is the plainest overlap. (Another customer's
  // subscription to the service is its own: the example's second customer has one.)
  j = example_json()["customers"][0];
  j["subscriptions"].push_back(first);
  errors = errors_of();
  ASSERT_EQ(errors.size(), 1u) << describe(errors);
  EXPECT_EQ(errors[0].path, "$.customers[0].subscriptions[2]");

  // The rule is for what is written: a dataset (a store from before the rule) still reads,
  // and the engine takes the subscription that started last.
  Json dataset = example_json();
  dataset["customers"][0] = j;
  EXPECT_TRUE(dataset_errors(dataset).empty()) << describe(dataset_errors(dataset));
}

TEST(DatasetValidation, AllErrorsAreReportedTogetherInOrder) {
  Json j = example_json();
  j["services"][0]["environment"] = "live";
  j["maintenance"][0]["start"] = "tomorrow";
  j["interruptions"][2]["service"] = "nope";
  const auto errors = dataset_errors(j);
  ASSERT_EQ(errors.size(), 3u) << describe(errors);
  // Entity errors in document order, then the cross-references.
  EXPECT_EQ(errors[0].path, "$.services[0].environment");
  EXPECT_EQ(errors[1].path, "$.maintenance[0].start");
  EXPECT_EQ(errors[2].path, "$.interruptions[2].service");
}

TEST(DatasetValidation, FromTextThroughParseJson) {
  const std::string text = test::read_shared("vectors/example-2026-11.json");
  EXPECT_EQ(parse_dataset(parse_json(text)), parse_dataset(example_json()));
  EXPECT_THROW(parse_json(text.substr(0, text.size() / 2)), ValidationError);
}

TEST(Interruption, DescriptionIsOptionalAndRoundTrips) {
  const Json json = {{"id", "INC0100"},
                     {"service", "oracle-prod"},
                     {"type", "outage"},
                     {"start", "2026-11-03T14:00:00Z"},
                     {"description", "Primary node stopped answering"}};
  const Interruption parsed = parse_interruption(json);
  EXPECT_EQ(parsed.description, "Primary node stopped answering");
  EXPECT_EQ(to_json(parsed), json);
  EXPECT_FALSE(parse_interruption(Json{{"id", "INC0101"},
                                       {"service", "oracle-prod"},
                                       {"type", "outage"},
                                       {"start", "2026-11-03T14:00:00Z"}})
                   .description);
}

}  // namespace
}  // namespace slmhub
