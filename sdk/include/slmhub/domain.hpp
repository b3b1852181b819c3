// The core entities of service level management (DOMAIN.md §1) and the dataset that carries
// them (DESIGN.md §5.3), as plain structs with strict JSON codecs. The host stores them, the
// offline report reads them from a file, plugins receive them through the catalog: all three
// read and write them through these codecs, so a dataset means the same thing everywhere.
//
// Units are in the names: money is integer cents (`_cents`), percentages are integer
// thousandths of a percent (`_thousandths`: 99.75 % is 99750), instants are UTC `Instant`s.
//
// Readers (`x_from_json`) follow the json.hpp contract: problems go to `errors` with their
// JSON path, the returned value is only meaningful when no error was added. `parse_x` reads
// from a root "$" and throws one ValidationError listing every problem. `to_json` writes the
// dataset key names back (instants as `…Z`, absent optionals omitted, defaults written out),
// so parse_x(to_json(x)) == x.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "slmhub/errors.hpp"
#include "slmhub/json.hpp"
#include "slmhub/time.hpp"

namespace slmhub {

// ---- enums -------------------------------------------------------------------------------

enum class Environment { production, qa, development };
inline constexpr std::array<EnumName<Environment>, 3> kEnvironmentNames{{
    {"production", Environment::production},
    {"qa", Environment::qa},
    {"development", Environment::development},
}};

enum class ContactRole {
  technical_primary,
  technical_secondary,
  billing,
  executive,
  security,
  outage
};
inline constexpr std::array<EnumName<ContactRole>, 6> kContactRoleNames{{
    {"technical_primary", ContactRole::technical_primary},
    {"technical_secondary", ContactRole::technical_secondary},
    {"billing", ContactRole::billing},
    {"executive", ContactRole::executive},
    {"security", ContactRole::security},
    {"outage", ContactRole::outage},  // the outage-notice list
}};

// `outage` counts as downtime; `degradation` is reported but does not count.
enum class InterruptionType { outage, degradation };
inline constexpr std::array<EnumName<InterruptionType>, 2> kInterruptionTypeNames{{
    {"outage", InterruptionType::outage},
    {"degradation", InterruptionType::degradation},
}};

enum class MaintenanceCategory {
  planned_outage,
  planned_non_disruptive,
  expedited_non_disruptive,
  emergency
};
inline constexpr std::array<EnumName<MaintenanceCategory>, 4> kMaintenanceCategoryNames{{
    {"planned_outage", MaintenanceCategory::planned_outage},
    {"planned_non_disruptive", MaintenanceCategory::planned_non_disruptive},
    {"expedited_non_disruptive", MaintenanceCategory::expedited_non_disruptive},
    {"emergency", MaintenanceCategory::emergency},
}};

// `skipped` and `cancelled` windows are ignored by the availability computation.
enum class MaintenanceStatus { scheduled, complete, skipped, cancelled };
inline constexpr std::array<EnumName<MaintenanceStatus>, 4> kMaintenanceStatusNames{{
    {"scheduled", MaintenanceStatus::scheduled},
    {"complete", MaintenanceStatus::complete},
    {"skipped", MaintenanceStatus::skipped},
    {"cancelled", MaintenanceStatus::cancelled},
}};

enum class CreditPolicyType { proportional, tiered };
inline constexpr std::array<EnumName<CreditPolicyType>, 2> kCreditPolicyTypeNames{{
    {"proportional", CreditPolicyType::proportional},
    {"tiered", CreditPolicyType::tiered},
}};

std::string_view to_string(Environment value);
std::string_view to_string(ContactRole value);
std::string_view to_string(InterruptionType value);
std::string_view to_string(MaintenanceCategory value);
std::string_view to_string(MaintenanceStatus value);
std::string_view to_string(CreditPolicyType value);

// nullopt for a name that is not on the enum's list.
std::optional<Environment> parse_environment(std::string_view name);
std::optional<ContactRole> parse_contact_role(std::string_view name);
std::optional<InterruptionType> parse_interruption_type(std::string_view name);
std::optional<MaintenanceCategory> parse_maintenance_category(std::string_view name);
std::optional<MaintenanceStatus> parse_maintenance_status(std::string_view name);
std::optional<CreditPolicyType> parse_credit_policy_type(std::string_view name);

// ---- entities ----------------------------------------------------------------------------

// The `hours` of a service that is measured around the clock; any other value names a
// calendar. Reserved: no calendar may use it as its id.
inline constexpr std::string_view kHours24x7 = "24x7";

// Wire form: {"id", "timezone", "hours": {"mon": ["08:00", "17:00"], ...}, "holidays": [dates]}.
// Days missing from `hours` are closed; "24:00" closes at midnight.
struct CalendarDef {
  std::string id;
  std::string timezone;
  // Indexed by date::weekday::c_encoding() (0 = Sunday), as BusinessCalendar expects.
  std::array<std::optional<DayHours>, 7> hours{};
  std::set<date::year_month_day> holidays;

  // The calendar as the time library computes with it. Throws TimeError for an unknown zone
  // (a CalendarDef from calendar_from_json without errors always has a known zone).
  BusinessCalendar to_calendar() const;
  bool operator==(const CalendarDef&) const = default;
};

struct CreditTier {
  int64_t below_thousandths = 0;   // applies when availability is below this
  int64_t credit_thousandths = 0;  // share of the monthly charge credited
  bool operator==(const CreditTier&) const = default;
};

// Wire form: {"type", "cap_percent"?, "tiers"?: [{"below_percent", "credit_percent"}]}.
struct CreditPolicy {
  CreditPolicyType type = CreditPolicyType::proportional;
  int64_t cap_thousandths = 100000;
  std::vector<CreditTier> tiers;  // non-empty exactly when type is tiered
  bool operator==(const CreditPolicy&) const = default;
};

struct Service {
  std::string id;  // e.g. "oracle-prod"
  std::string name;
  Environment environment = Environment::production;
  std::string hours{kHours24x7};        // "24x7" or a calendar id
  int64_t target_thousandths = 0;       // wire: target_percent
  std::optional<std::string> timezone;  // absent: the dataset's zone
  int64_t maintenance_budget_hours_per_fy = 40;
  std::optional<CreditPolicy> credit_policy;  // absent: the dataset's policy
  bool operator==(const Service&) const = default;
};

// The largest amount of money an input may name: 100 million in the currency, far above any
// real charge and far enough below INT64_MAX that the sums and products of a month (invoice
// totals, charge × seconds for a credit) cannot overflow.
inline constexpr int64_t kMaxAmountCents = 10'000'000'000;

struct Subscription {
  std::string service;
  int64_t monthly_charge_cents = 0;
  std::optional<Instant> start;
  std::optional<Instant> end;
  bool operator==(const Subscription&) const = default;
};

// local@domain: one '@' with text on both sides, no blanks or control characters. What a
// contact's e-mail and every configured recipient must look like.
bool looks_like_email(std::string_view text);

struct Contact {
  ContactRole role = ContactRole::technical_primary;
  std::string name;
  std::string email;
  bool operator==(const Contact&) const = default;
};

struct Customer {
  std::string id;
  std::string name;
  std::string billing_code;
  std::vector<Subscription> subscriptions;  // wire: optional, absent = none
  std::vector<Contact> contacts;            // wire: optional, absent = none
  bool operator==(const Customer&) const = default;
};

struct MaintenanceWindow {
  std::string id;  // the change number, e.g. "CHG0001234"
  std::string service;
  MaintenanceCategory category = MaintenanceCategory::planned_outage;
  Instant start{};
  Instant end{};
  std::optional<Instant> announced_at;
  MaintenanceStatus status = MaintenanceStatus::scheduled;
  bool operator==(const MaintenanceWindow&) const = default;
};

struct Interruption {
  std::string id;  // the incident number, e.g. "INC0012345"
  std::string service;
  InterruptionType type = InterruptionType::outage;
  Instant start{};
  std::optional<Instant> end;  // absent: still open
  // Customers impacted; empty means every subscriber of the service (and is then omitted
  // from the wire form, which says the same thing).
  std::vector<std::string> customers;
  // What happened, in words (a ticket's short description); shown in reports and SIAs.
  std::optional<std::string> description;
  bool operator==(const Interruption&) const = default;
};

struct Dataset {
  std::string timezone;  // default IANA zone
  int fiscal_year_start_month = 9;
  std::optional<std::string> provider_calendar;
  std::vector<CalendarDef> calendars;  // wire: each list optional, absent = empty
  std::vector<Service> services;
  std::vector<Customer> customers;
  std::optional<CreditPolicy> credit_policy;
  std::vector<MaintenanceWindow> maintenance;
  std::vector<Interruption> interruptions;
  bool operator==(const Dataset&) const = default;
};

// The zone a service's days and months are counted in (DOMAIN.md §2): its own, else the
// dataset's. Its reports, credits, claims, bills and maintenance budget all go by it.
inline const std::string& zone_of(const Dataset& dataset, const Service& service) {
  return service.timezone ? *service.timezone : dataset.timezone;
}

// ---- readers (errors collected) ----------------------------------------------------------

CalendarDef calendar_from_json(const Json& json, const std::string& path,
                               std::vector<FieldError>& errors);
CreditTier credit_tier_from_json(const Json& json, const std::string& path,
                                 std::vector<FieldError>& errors);
CreditPolicy credit_policy_from_json(const Json& json, const std::string& path,
                                     std::vector<FieldError>& errors);
Service service_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors);
Subscription subscription_from_json(const Json& json, const std::string& path,
                                    std::vector<FieldError>& errors);
Contact contact_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors);
Customer customer_from_json(const Json& json, const std::string& path,
                            std::vector<FieldError>& errors);
MaintenanceWindow maintenance_window_from_json(const Json& json, const std::string& path,
                                               std::vector<FieldError>& errors);
Interruption interruption_from_json(const Json& json, const std::string& path,
                                    std::vector<FieldError>& errors);
// The whole dataset: every entity, then check_references.
Dataset dataset_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors);

// The rules that span entities: ids unique per kind; service hours, provider_calendar,
// subscriptions, maintenance and interruptions naming calendars, services and customers
// that exist. `path` is the dataset's own path; errors name `path.services[i].hours` etc.
// Also usable on a Dataset assembled in code (e.g. a store snapshot plus an import).
//
// Where the references of a dataset's two long lists point: positions in Dataset::services and
// Dataset::customers, kUnresolved where an id is empty or names nothing (a reference
// check_references reports). check_references finds them anyway, and handing them on spares
// a consumer looking a million ids up a second time (the availability engine's index did, at
// a fifth of its cost). Valid for the Dataset they were resolved from while its lists are
// unchanged.
struct DatasetReferences {
  static constexpr uint32_t kUnresolved = UINT32_MAX;
  std::vector<uint32_t> maintenance_service;   // by maintenance window
  std::vector<uint32_t> interruption_service;  // by interruption
  // The customers interruption i names: named[named_first[i] .. named_first[i + 1]).
  std::vector<uint32_t> named_first;
  std::vector<uint32_t> named;
  bool operator==(const DatasetReferences&) const = default;
};
// With `resolved`, also where the references point.
void check_references(const Dataset& dataset, const std::string& path,
                      std::vector<FieldError>& errors, DatasetReferences* resolved = nullptr);
// Where the references point, nothing checked (for a dataset known to be valid, or whose
// unresolved references the consumer skips).
DatasetReferences resolve_references(const Dataset& dataset);

// ---- throwing readers (root path "$") ----------------------------------------------------

CalendarDef parse_calendar(const Json& json);
CreditPolicy parse_credit_policy(const Json& json);
Service parse_service(const Json& json);
Subscription parse_subscription(const Json& json);
Contact parse_contact(const Json& json);
Customer parse_customer(const Json& json);

// A customer subscribes to a service once at a time: two of its subscriptions to one service
// must not both be active at some moment (one may start where the other ends: a change of
// charge). Overlapping ones would leave one charge neither billed nor credited without a
// word. The later-listed one of a pair is reported, at `path`.subscriptions[i]. Checked where
// a customer is written (the API, an import), not where one is read: a store written before
// the rule still reads, and the engine takes the subscription that started last.
void check_subscriptions_apart(const Customer& customer, const std::string& path,
                               std::vector<FieldError>& errors);
MaintenanceWindow parse_maintenance_window(const Json& json);
Interruption parse_interruption(const Json& json);
Dataset parse_dataset(const Json& json);

// ---- reading a dataset from its text -----------------------------------------------------

// parse_dataset(parse_json(json_text, max_depth)), the same Dataset and the same
// ValidationError, in a fraction of the time and memory for a large dataset: a simdjson
// decoder reads the text straight into the Dataset, checking every rule the strict readers
// check, and hands any text it is not sure of to the strict path, which names the problems.
// Copies the text once (the decoder reads a few bytes past its end).
Dataset read_dataset(std::string_view json_text, int max_depth = 64);
// The same for the file at `path`, mapped rather than copied. Throws std::system_error when
// the file cannot be opened or mapped.
Dataset read_dataset_file(const std::string& path, int max_depth = 64);
// The same, and where its references point, as check_references found them while reading.
Dataset read_dataset_file(const std::string& path, DatasetReferences& resolved, int max_depth = 64);

// One interruption from a request body: the Interruption
// parse_interruption(parse_json(json_text, max_depth)) returns, read by read_dataset's decoder
// straight from the text, or nullopt whenever the decoder is not sure of the text (malformed,
// invalid, or a form it leaves to the strict path, such as an escape in a key); the strict
// path then says what is wrong. Copies the text once.
std::optional<Interruption> try_read_interruption(std::string_view json_text, int max_depth = 64);

// ---- writers -----------------------------------------------------------------------------

Json to_json(const CalendarDef& value);
Json to_json(const CreditTier& value);
Json to_json(const CreditPolicy& value);
Json to_json(const Service& value);
Json to_json(const Subscription& value);
Json to_json(const Contact& value);
Json to_json(const Customer& value);
Json to_json(const MaintenanceWindow& value);
Json to_json(const Interruption& value);
// to_json(value).dump(), written without the JSON tree (an interruption is stored as this
// text on every POST).
std::string to_json_text(const Interruption& value);
Json to_json(const Dataset& value);

}  // namespace slmhub
