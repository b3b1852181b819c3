#include "slmhub/domain.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "domain_rules.hpp"
#include "slmhub/utf8.hpp"

namespace slmhub {
namespace {

// Dataset key of each weekday and its date::weekday::c_encoding() index, in wire order.
constexpr std::array<std::pair<std::string_view, int>, 7> kWeekdayKeys{{
    {"mon", 1},
    {"tue", 2},
    {"wed", 3},
    {"thu", 4},
    {"fri", 5},
    {"sat", 6},
    {"sun", 0},
}};

std::string percent_text(int64_t thousandths) { return thousandths_to_json(thousandths).dump(); }

// "HH:MM" from 00:00 to 24:00, as minutes since midnight.
std::optional<int> parse_time_of_day(std::string_view text) {
  auto digit = [&](std::size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
    return std::nullopt;
  }
  const int hour = (text[0] - '0') * 10 + (text[1] - '0');
  const int minute = (text[3] - '0') * 10 + (text[4] - '0');
  if (minute > 59 || hour > 24 || (hour == 24 && minute != 0)) return std::nullopt;
  return hour * 60 + minute;
}

std::string format_time_of_day(int minutes) {
  const int hour = minutes / 60;
  const int minute = minutes % 60;
  std::string text;
  text += static_cast<char>('0' + hour / 10);
  text += static_cast<char>('0' + hour % 10);
  text += ':';
  text += static_cast<char>('0' + minute / 10);
  text += static_cast<char>('0' + minute % 10);
  return text;
}

std::optional<DayHours> read_day_hours(const Json& json, const std::string& path,
                                       std::vector<FieldError>& errors) {
  if (!json.is_array() || json.size() != 2) {
    errors.push_back({path, "expected [open, close] as two \"HH:MM\" strings, found " +
                                (json.is_array() ? "an array of " + std::to_string(json.size())
                                                 : json_type_name(json))});
    return std::nullopt;
  }
  std::array<int, 2> minutes{};
  bool ok = true;
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string element_path = path_index(path, i);
    const std::size_t before = errors.size();
    const std::string text = read_string(json[i], element_path, errors);
    if (errors.size() != before) {
      ok = false;
      continue;
    }
    const auto parsed = parse_time_of_day(text);
    if (!parsed) {
      errors.push_back({element_path, "expected a time \"HH:MM\" from 00:00 to 24:00, found " +
                                          quote_text(text)});
      ok = false;
      continue;
    }
    minutes[i] = *parsed;
  }
  if (!ok) return std::nullopt;
  if (minutes[0] >= minutes[1]) {
    errors.push_back({path, "opening time " + format_time_of_day(minutes[0]) +
                                " must be before closing time " + format_time_of_day(minutes[1])});
    return std::nullopt;
  }
  return DayHours{minutes[0], minutes[1]};
}

// The period rule, for values that were read cleanly (a neutral value is never compared).
void check_period(ObjectReader& reader, std::optional<Instant> start, std::optional<Instant> end,
                  std::size_t errors_before) {
  if (reader.errors().size() != errors_before) return;
  detail::check_end_after_start(start, end, reader.path_of("end"), reader.errors());
}

// The ids of one kind of entity, indexed to find unknown references (report_duplicate_ids
// reports repeats; the first occurrence is the one indexed). A million interruptions name
// services, so this is a flat open-addressing table (8 bytes a slot: a position and its id's
// hash, so a probe rarely reads an entity) rather than a tree of id strings; ids are sorted
// only to list them in a message.
template <typename T>
class IdIndex {
 public:
  explicit IdIndex(const std::vector<T>& items) : items_(items) {
    std::size_t capacity = 16;
    while (capacity < 2 * items.size()) capacity *= 2;
    slots_.assign(capacity, Slot{});
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string& id = items[i].id;
      if (id.empty()) continue;  // already reported as missing or empty
      const std::size_t hash = std::hash<std::string_view>{}(id);
      Slot& slot = find_slot(id, hash);
      if (slot.position == kEmpty) slot = {static_cast<uint32_t>(i), static_cast<uint32_t>(hash)};
    }
  }

  bool contains(std::string_view id) { return find(id) != kEmpty; }
  // The position of the first item with `id`, or DatasetReferences::kUnresolved.
  uint32_t find(std::string_view id) {
    static_assert(kEmpty == DatasetReferences::kUnresolved);
    return find_slot(id, std::hash<std::string_view>{}(id)).position;
  }

  // "a, b, c" from the sorted ids, shortened for a very long list.
  std::string known_list() const {
    constexpr std::size_t kMaxShown = 20;
    std::vector<std::string_view> ids;
    for (const Slot& slot : slots_) {
      if (slot.position != kEmpty) ids.push_back(items_[slot.position].id);
    }
    if (ids.empty()) return "none";
    std::sort(ids.begin(), ids.end());
    std::string text;
    for (std::size_t shown = 0; shown < ids.size(); ++shown) {
      if (shown == kMaxShown) {
        text += ", and " + std::to_string(ids.size() - kMaxShown) + " more";
        break;
      }
      if (!text.empty()) text += ", ";
      text += ids[shown];
    }
    return text;
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint32_t position = kEmpty;
    uint32_t hash = 0;  // low bits of the id's hash
  };

  // The slot holding `id`, or the empty slot where it belongs (linear probing; the table is
  // at most half full).
  Slot& find_slot(std::string_view id, std::size_t hash) {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t at = hash & mask;; at = (at + 1) & mask) {
      Slot& slot = slots_[at];
      if (slot.position == kEmpty) return slot;
      if (slot.hash == static_cast<uint32_t>(hash) && items_[slot.position].id == id) return slot;
    }
  }

  const std::vector<T>& items_;
  std::vector<Slot> slots_;
};

// Every id after the first occurrence of it, reported at `path`[i].id naming the first. A
// hash table of a million ids misses the cache on nearly every probe; sorting the ids' hashes
// (a radix sort, four passes in memory order) costs a fraction of that, and only ids whose
// hashes collide are compared.
template <typename T>
void report_duplicate_ids(const std::vector<T>& items, const std::string& path,
                          std::string_view kind, std::vector<FieldError>& errors) {
  // Ids are usually issued in order (INC0000001, INC0000002, ...), and a list whose ids only
  // increase repeats none: one pass over them instead of hashing and sorting a million.
  if (std::adjacent_find(items.begin(), items.end(),
                         [](const T& a, const T& b) { return !(a.id < b.id); }) == items.end()) {
    return;
  }
  // Hash in the high half, position in the low half: the sort is stable, so each run of
  // equal hashes lists its ids in list order.
  std::vector<uint64_t> keys;
  keys.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& id = items[i].id;
    if (id.empty()) continue;  // already reported as missing or empty
    const auto hash = static_cast<uint32_t>(std::hash<std::string_view>{}(id));
    keys.push_back(uint64_t{hash} << 32 | i);
  }
  std::vector<uint64_t> sorted(keys.size());
  for (int shift = 32; shift < 64; shift += 8) {
    std::array<std::size_t, 257> at{};
    for (const uint64_t key : keys) ++at[((key >> shift) & 0xff) + 1];
    for (std::size_t b = 1; b < at.size(); ++b) at[b] += at[b - 1];
    for (const uint64_t key : keys) sorted[at[(key >> shift) & 0xff]++] = key;
    keys.swap(sorted);
  }
  std::vector<std::pair<uint32_t, uint32_t>> repeats;  // position, first position
  for (std::size_t a = 0; a < keys.size();) {
    std::size_t b = a + 1;
    while (b < keys.size() && keys[b] >> 32 == keys[a] >> 32) ++b;
    for (std::size_t k = a + 1; k < b; ++k) {
      const auto position = static_cast<uint32_t>(keys[k]);
      for (std::size_t j = a; j < k; ++j) {
        const auto first = static_cast<uint32_t>(keys[j]);
        if (items[first].id == items[position].id) {
          repeats.emplace_back(position, first);
          break;
        }
      }
    }
    a = b;
  }
  std::sort(repeats.begin(), repeats.end());
  for (const auto& [position, first] : repeats) {
    errors.push_back({path_key(path_index(path, position), "id"),
                      "duplicate " + std::string(kind) + " id " + quote_text(items[position].id) +
                          " (first at " + path_index(path, first) + ")"});
  }
}

// `value` names no `kind` among `ids` (unless empty: already reported as missing). `path`
// makes the error's path: only on error, as a million references are checked at once.
template <typename T, typename Path>
void report_unknown(IdIndex<T>& ids, const std::string& value, Path&& path, std::string_view kind,
                    std::vector<FieldError>& errors) {
  if (value.empty()) return;
  errors.push_back({path(), "unknown " + std::string(kind) + " " + quote_text(value) +
                                " (known: " + ids.known_list() + ")"});
}

template <typename T, typename Path>
void check_known(IdIndex<T>& ids, const std::string& value, Path&& path, std::string_view kind,
                 std::vector<FieldError>& errors) {
  if (!ids.contains(value)) report_unknown(ids, value, std::forward<Path>(path), kind, errors);
}

template <typename T, typename Read>
T parse_root(const Json& json, Read read) {
  std::vector<FieldError> errors;
  T value = read(json, "$", errors);
  throw_if_errors(std::move(errors));
  return value;
}

template <typename T>
Json list_to_json(const std::vector<T>& items) {
  Json out = Json::array();
  for (const auto& item : items) out.push_back(to_json(item));
  return out;
}

}  // namespace

bool looks_like_email(std::string_view text) {
  const auto at = text.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size()) return false;
  if (text.find('@', at + 1) != std::string_view::npos) return false;
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

// ---- rules shared with the fast decoder --------------------------------------------------

namespace detail {

void check_end_after_start(std::optional<Instant> start, std::optional<Instant> end,
                           const std::string& end_path, std::vector<FieldError>& errors) {
  if (start && end && *end <= *start) {
    errors.push_back({end_path, "end " + format_instant(*end) + " must be after start " +
                                    format_instant(*start)});
  }
}

void check_email(const std::string& email, const std::string& path,
                 std::vector<FieldError>& errors) {
  if (!looks_like_email(email)) {
    errors.push_back(
        {path, "expected an e-mail address (local@domain), found " + quote_text(email)});
  }
}

void check_distinct_customers(const std::vector<std::string>& customers, const std::string& path,
                              std::vector<FieldError>& errors) {
  if (customers.size() < 2) return;  // most interruptions: no map for a list without repeats
  std::map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < customers.size(); ++i) {
    const auto& id = customers[i];
    if (id.empty()) continue;
    if (auto [it, inserted] = seen.emplace(id, i); !inserted) {
      errors.push_back({path_index(path, i), "customer " + quote_text(id) +
                                                 " is already listed at index " +
                                                 std::to_string(it->second)});
    }
  }
}

}  // namespace detail

// ---- enums -------------------------------------------------------------------------------

std::string_view to_string(Environment value) { return enum_to_name(kEnvironmentNames, value); }
std::string_view to_string(ContactRole value) { return enum_to_name(kContactRoleNames, value); }
std::string_view to_string(InterruptionType value) {
  return enum_to_name(kInterruptionTypeNames, value);
}
std::string_view to_string(MaintenanceCategory value) {
  return enum_to_name(kMaintenanceCategoryNames, value);
}
std::string_view to_string(MaintenanceStatus value) {
  return enum_to_name(kMaintenanceStatusNames, value);
}
std::string_view to_string(CreditPolicyType value) {
  return enum_to_name(kCreditPolicyTypeNames, value);
}

std::optional<Environment> parse_environment(std::string_view name) {
  return enum_from_name(kEnvironmentNames, name);
}
std::optional<ContactRole> parse_contact_role(std::string_view name) {
  return enum_from_name(kContactRoleNames, name);
}
std::optional<InterruptionType> parse_interruption_type(std::string_view name) {
  return enum_from_name(kInterruptionTypeNames, name);
}
std::optional<MaintenanceCategory> parse_maintenance_category(std::string_view name) {
  return enum_from_name(kMaintenanceCategoryNames, name);
}
std::optional<MaintenanceStatus> parse_maintenance_status(std::string_view name) {
  return enum_from_name(kMaintenanceStatusNames, name);
}
std::optional<CreditPolicyType> parse_credit_policy_type(std::string_view name) {
  return enum_from_name(kCreditPolicyTypeNames, name);
}

// ---- calendars ---------------------------------------------------------------------------

BusinessCalendar CalendarDef::to_calendar() const {
  return BusinessCalendar(id, find_zone(timezone), hours, holidays);
}

CalendarDef calendar_from_json(const Json& json, const std::string& path,
                               std::vector<FieldError>& errors) {
  CalendarDef calendar;
  ObjectReader r(json, path, errors);
  calendar.id = r.required_string("id");
  if (calendar.id == kHours24x7) {
    r.error("id", "the id '24x7' is reserved for round-the-clock service hours");
  }
  calendar.timezone = r.required_time_zone("timezone");

  ObjectReader hours = r.required_object("hours");
  bool any_open_day = false;
  for (const auto& [key, index] : kWeekdayKeys) {
    if (const Json* day = hours.take(key)) {
      calendar.hours[static_cast<std::size_t>(index)] =
          read_day_hours(*day, hours.path_of(key), errors);
      any_open_day = true;
    }
  }
  hours.finish();
  // A calendar without a single business weekday would make every business-day deadline
  // unreachable.
  if (hours.is_object() && !any_open_day) {
    r.error("hours", "a calendar needs opening hours on at least one weekday (keys mon..sun)");
  }

  for (const auto& day : r.optional_array("holidays", read_date)) calendar.holidays.insert(day);
  r.finish();
  return calendar;
}

Json to_json(const CalendarDef& value) {
  Json hours = Json::object();
  for (const auto& [key, index] : kWeekdayKeys) {
    if (const auto& day = value.hours[static_cast<std::size_t>(index)]) {
      hours[std::string(key)] = {format_time_of_day(day->open_minute),
                                 format_time_of_day(day->close_minute)};
    }
  }
  Json holidays = Json::array();
  for (const auto& day : value.holidays) holidays.push_back(format_date(day));
  return {{"id", value.id},
          {"timezone", value.timezone},
          {"hours", std::move(hours)},
          {"holidays", std::move(holidays)}};
}

// ---- credit policies ---------------------------------------------------------------------

CreditTier credit_tier_from_json(const Json& json, const std::string& path,
                                 std::vector<FieldError>& errors) {
  CreditTier tier;
  ObjectReader r(json, path, errors);
  tier.below_thousandths = r.required_thousandths("below_percent");
  tier.credit_thousandths = r.required_thousandths("credit_percent");
  r.finish();
  return tier;
}

CreditPolicy credit_policy_from_json(const Json& json, const std::string& path,
                                     std::vector<FieldError>& errors) {
  CreditPolicy policy;
  ObjectReader r(json, path, errors);
  const std::size_t before = errors.size();
  policy.type = r.required_enum("type", kCreditPolicyTypeNames);
  const bool type_known = r.is_object() && errors.size() == before;
  policy.cap_thousandths = r.optional_thousandths("cap_percent").value_or(100000);
  const bool has_tiers = r.has("tiers");
  policy.tiers = r.optional_array("tiers", credit_tier_from_json);
  if (type_known) {
    if (policy.type == CreditPolicyType::tiered && policy.tiers.empty()) {
      r.error("tiers", "a tiered policy needs at least one tier {below_percent, credit_percent}");
    } else if (policy.type == CreditPolicyType::proportional && has_tiers) {
      r.error("tiers", "tiers apply only to a tiered policy; this one is proportional");
    }
  }
  // Two tiers with the same threshold would make the applicable tier ambiguous.
  std::map<int64_t, std::size_t> seen;
  for (std::size_t i = 0; i < policy.tiers.size(); ++i) {
    auto [it, inserted] = seen.emplace(policy.tiers[i].below_thousandths, i);
    if (!inserted) {
      errors.push_back({path_key(path_index(r.path_of("tiers"), i), "below_percent"),
                        "tiers[" + std::to_string(it->second) + "] already applies below " +
                            percent_text(it->first) + " %"});
    }
  }
  r.finish();
  return policy;
}

Json to_json(const CreditTier& value) {
  return {{"below_percent", thousandths_to_json(value.below_thousandths)},
          {"credit_percent", thousandths_to_json(value.credit_thousandths)}};
}

Json to_json(const CreditPolicy& value) {
  Json out = {{"type", to_string(value.type)},
              {"cap_percent", thousandths_to_json(value.cap_thousandths)}};
  if (!value.tiers.empty()) out["tiers"] = list_to_json(value.tiers);
  return out;
}

// ---- services ----------------------------------------------------------------------------

Service service_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors) {
  Service service;
  ObjectReader r(json, path, errors);
  service.id = r.required_string("id");
  service.name = r.required_string("name");
  service.environment = r.required_enum("environment", kEnvironmentNames);
  service.hours = r.required_string("hours");
  service.target_thousandths = r.required_thousandths("target_percent");
  service.timezone = r.optional_time_zone("timezone");
  service.maintenance_budget_hours_per_fy =
      r.optional_int("maintenance_budget_hours_per_fy", 0, detail::kMaxBudgetHoursPerFy)
          .value_or(40);
  service.credit_policy = r.optional_object("credit_policy", credit_policy_from_json);
  r.finish();
  return service;
}

Json to_json(const Service& value) {
  Json out = {{"id", value.id},
              {"name", value.name},
              {"environment", to_string(value.environment)},
              {"hours", value.hours},
              {"target_percent", thousandths_to_json(value.target_thousandths)},
              {"maintenance_budget_hours_per_fy", value.maintenance_budget_hours_per_fy}};
  if (value.timezone) out["timezone"] = *value.timezone;
  if (value.credit_policy) out["credit_policy"] = to_json(*value.credit_policy);
  return out;
}

// ---- customers ---------------------------------------------------------------------------

Subscription subscription_from_json(const Json& json, const std::string& path,
                                    std::vector<FieldError>& errors) {
  Subscription subscription;
  ObjectReader r(json, path, errors);
  subscription.service = r.required_string("service");
  subscription.monthly_charge_cents = r.required_int("monthly_charge_cents", 0, kMaxAmountCents);
  const std::size_t before = errors.size();
  subscription.start = r.optional_instant("start");
  subscription.end = r.optional_instant("end");
  check_period(r, subscription.start, subscription.end, before);
  r.finish();
  return subscription;
}

Json to_json(const Subscription& value) {
  Json out = {{"service", value.service}, {"monthly_charge_cents", value.monthly_charge_cents}};
  if (value.start) out["start"] = format_instant(*value.start);
  if (value.end) out["end"] = format_instant(*value.end);
  return out;
}

Contact contact_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors) {
  Contact contact;
  ObjectReader r(json, path, errors);
  contact.role = r.required_enum("role", kContactRoleNames);
  contact.name = r.required_string("name");
  const std::size_t before = errors.size();
  contact.email = r.required_string("email");
  if (errors.size() == before && r.has("email")) {
    detail::check_email(contact.email, r.path_of("email"), errors);
  }
  r.finish();
  return contact;
}

Json to_json(const Contact& value) {
  return {{"role", to_string(value.role)}, {"name", value.name}, {"email", value.email}};
}

Customer customer_from_json(const Json& json, const std::string& path,
                            std::vector<FieldError>& errors) {
  Customer customer;
  ObjectReader r(json, path, errors);
  customer.id = r.required_string("id");
  customer.name = r.required_string("name");
  customer.billing_code = r.required_string("billing_code");
  customer.subscriptions = r.optional_array("subscriptions", subscription_from_json);
  customer.contacts = r.optional_array("contacts", contact_from_json);
  r.finish();
  return customer;
}

void check_subscriptions_apart(const Customer& customer, const std::string& path,
                               std::vector<FieldError>& errors) {
  const std::vector<Subscription>& subscriptions = customer.subscriptions;
  auto describe = [](const Subscription& s) {
    return (s.start ? "from " + format_instant(*s.start) : std::string("from the beginning")) +
           (s.end ? " to " + format_instant(*s.end) : std::string(" with no end"));
  };
  for (std::size_t j = 1; j < subscriptions.size(); ++j) {
    const Subscription& b = subscriptions[j];
    for (std::size_t i = 0; i < j; ++i) {
      const Subscription& a = subscriptions[i];
      if (a.service != b.service || b.service.empty()) continue;
      const bool apart =
          (a.end && b.start && *a.end <= *b.start) || (b.end && a.start && *b.end <= *a.start);
      if (apart) continue;
      errors.push_back(
          {path_index(path_key(path, "subscriptions"), j),
           "subscription to service " + quote_text(b.service) + " " + describe(b) +
               " overlaps the one at index " + std::to_string(i) + " (" + describe(a) +
               "): a customer subscribes to a service once at a time; end one where the next "
               "starts"});
      break;
    }
  }
}

Json to_json(const Customer& value) {
  return {{"id", value.id},
          {"name", value.name},
          {"billing_code", value.billing_code},
          {"subscriptions", list_to_json(value.subscriptions)},
          {"contacts", list_to_json(value.contacts)}};
}

// ---- maintenance and interruptions -------------------------------------------------------

MaintenanceWindow maintenance_window_from_json(const Json& json, const std::string& path,
                                               std::vector<FieldError>& errors) {
  MaintenanceWindow window;
  ObjectReader r(json, path, errors);
  window.id = r.required_string("id");
  window.service = r.required_string("service");
  window.category = r.required_enum("category", kMaintenanceCategoryNames);
  const std::size_t before = errors.size();
  window.start = r.required_instant("start");
  window.end = r.required_instant("end");
  check_period(r, window.start, window.end, before);
  window.announced_at = r.optional_instant("announced_at");
  window.status =
      r.optional_enum("status", kMaintenanceStatusNames).value_or(MaintenanceStatus::scheduled);
  r.finish();
  return window;
}

Json to_json(const MaintenanceWindow& value) {
  Json out = {{"id", value.id},
              {"service", value.service},
              {"category", to_string(value.category)},
              {"start", format_instant(value.start)},
              {"end", format_instant(value.end)},
              {"status", to_string(value.status)}};
  if (value.announced_at) out["announced_at"] = format_instant(*value.announced_at);
  return out;
}

Interruption interruption_from_json(const Json& json, const std::string& path,
                                    std::vector<FieldError>& errors) {
  Interruption interruption;
  ObjectReader r(json, path, errors);
  interruption.id = r.required_string("id");
  interruption.service = r.required_string("service");
  interruption.type = r.required_enum("type", kInterruptionTypeNames);
  const std::size_t before = errors.size();
  interruption.start = r.required_instant("start");
  interruption.end = r.optional_instant("end");
  check_period(r, interruption.start, interruption.end, before);
  interruption.customers = r.optional_string_list("customers");
  interruption.description = r.optional_string("description", EmptyString::allow);
  detail::check_distinct_customers(interruption.customers, r.path_of("customers"), errors);
  r.finish();
  return interruption;
}

Json to_json(const Interruption& value) {
  Json out = {{"id", value.id},
              {"service", value.service},
              {"type", to_string(value.type)},
              {"start", format_instant(value.start)}};
  if (value.end) out["end"] = format_instant(*value.end);
  if (!value.customers.empty()) out["customers"] = value.customers;
  if (value.description) out["description"] = *value.description;
  return out;
}

namespace {

// A JSON string as nlohmann::json's dump() writes it (UTF-8 as is, the two-character escapes
// where JSON has them, other control characters as \u00xx).
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // the start of the characters not yet written, none needing escape
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text, run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text, run, text.size() - run);
  out += '"';
}

}  // namespace

std::string to_json_text(const Interruption& value) {
  // Text the JSON writer refuses goes to it, to be refused the same way.
  bool writable = valid_utf8(value.id) && valid_utf8(value.service) &&
                  (!value.description || valid_utf8(*value.description));
  for (const auto& customer : value.customers) writable = writable && valid_utf8(customer);
  if (!writable) return to_json(value).dump();
  // The keys in the order of the tree's sorted map.
  std::string out;
  out.reserve(160 + value.id.size() + value.service.size() +
              (value.description ? value.description->size() : 0) + 8 * value.customers.size());
  out += '{';
  if (!value.customers.empty()) {
    out += "\"customers\":[";
    for (std::size_t i = 0; i < value.customers.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, value.customers[i]);
    }
    out += "],";
  }
  if (value.description) {
    out += "\"description\":";
    append_json_string(out, *value.description);
    out += ',';
  }
  if (value.end) {
    out += "\"end\":";
    append_json_string(out, format_instant(*value.end));
    out += ',';
  }
  out += "\"id\":";
  append_json_string(out, value.id);
  out += ",\"service\":";
  append_json_string(out, value.service);
  out += ",\"start\":";
  append_json_string(out, format_instant(value.start));
  out += ",\"type\":";
  append_json_string(out, to_string(value.type));
  out += '}';
  return out;
}

// ---- dataset -----------------------------------------------------------------------------

Dataset dataset_from_json(const Json& json, const std::string& path,
                          std::vector<FieldError>& errors) {
  Dataset dataset;
  ObjectReader r(json, path, errors);
  dataset.timezone = r.required_time_zone("timezone");
  dataset.fiscal_year_start_month =
      static_cast<int>(r.optional_int("fiscal_year_start_month", 1, 12).value_or(9));
  dataset.provider_calendar = r.optional_string("provider_calendar");
  dataset.calendars = r.optional_array("calendars", calendar_from_json);
  dataset.services = r.optional_array("services", service_from_json);
  dataset.customers = r.optional_array("customers", customer_from_json);
  dataset.credit_policy = r.optional_object("credit_policy", credit_policy_from_json);
  dataset.maintenance = r.optional_array("maintenance", maintenance_window_from_json);
  dataset.interruptions = r.optional_array("interruptions", interruption_from_json);
  r.finish();
  if (r.is_object()) check_references(dataset, path, errors);
  return dataset;
}

namespace {

// Where the long lists' references point, by the indexes of services and customers.
DatasetReferences resolve(const Dataset& dataset, IdIndex<Service>& services,
                          IdIndex<Customer>& customers) {
  DatasetReferences out;
  out.maintenance_service.reserve(dataset.maintenance.size());
  for (const MaintenanceWindow& w : dataset.maintenance) {
    out.maintenance_service.push_back(services.find(w.service));
  }
  out.interruption_service.reserve(dataset.interruptions.size());
  out.named_first.reserve(dataset.interruptions.size() + 1);
  out.named_first.push_back(0);
  for (const Interruption& i : dataset.interruptions) {
    out.interruption_service.push_back(services.find(i.service));
    for (const std::string& c : i.customers) out.named.push_back(customers.find(c));
    out.named_first.push_back(static_cast<uint32_t>(out.named.size()));
  }
  return out;
}

}  // namespace

DatasetReferences resolve_references(const Dataset& dataset) {
  IdIndex services(dataset.services);
  IdIndex customers(dataset.customers);
  return resolve(dataset, services, customers);
}

void check_references(const Dataset& dataset, const std::string& path,
                      std::vector<FieldError>& errors, DatasetReferences* resolved) {
  report_duplicate_ids(dataset.calendars, path_key(path, "calendars"), "calendar", errors);
  report_duplicate_ids(dataset.services, path_key(path, "services"), "service", errors);
  report_duplicate_ids(dataset.customers, path_key(path, "customers"), "customer", errors);
  report_duplicate_ids(dataset.maintenance, path_key(path, "maintenance"), "maintenance window",
                       errors);
  report_duplicate_ids(dataset.interruptions, path_key(path, "interruptions"), "interruption",
                       errors);
  IdIndex calendars(dataset.calendars);
  IdIndex services(dataset.services);
  IdIndex customers(dataset.customers);

  if (dataset.provider_calendar) {
    check_known(
        calendars, *dataset.provider_calendar, [&] { return path_key(path, "provider_calendar"); },
        "calendar", errors);
  }
  const std::string services_path = path_key(path, "services");
  for (std::size_t i = 0; i < dataset.services.size(); ++i) {
    const std::string& hours = dataset.services[i].hours;
    if (hours.empty() || hours == kHours24x7 || calendars.contains(hours)) continue;
    errors.push_back({path_key(path_index(services_path, i), "hours"),
                      "unknown calendar " + quote_text(hours) + " (known: " +
                          calendars.known_list() + "; or \"24x7\" for round-the-clock service)"});
  }
  const std::string customers_path = path_key(path, "customers");
  for (std::size_t i = 0; i < dataset.customers.size(); ++i) {
    const auto& subscriptions = dataset.customers[i].subscriptions;
    for (std::size_t j = 0; j < subscriptions.size(); ++j) {
      check_known(
          services, subscriptions[j].service,
          [&] {
            return path_key(path_index(path_key(path_index(customers_path, i), "subscriptions"), j),
                            "service");
          },
          "service", errors);
    }
  }
  // The long lists: resolved once, then each unresolved reference reported.
  DatasetReferences local;
  DatasetReferences& refs = resolved ? *resolved : local;
  refs = resolve(dataset, services, customers);
  constexpr uint32_t kUnresolved = DatasetReferences::kUnresolved;
  const std::string maintenance_path = path_key(path, "maintenance");
  for (std::size_t i = 0; i < dataset.maintenance.size(); ++i) {
    if (refs.maintenance_service[i] != kUnresolved) continue;
    report_unknown(
        services, dataset.maintenance[i].service,
        [&] { return path_key(path_index(maintenance_path, i), "service"); }, "service", errors);
  }
  const std::string interruptions_path = path_key(path, "interruptions");
  for (std::size_t i = 0; i < dataset.interruptions.size(); ++i) {
    const Interruption& interruption = dataset.interruptions[i];
    if (refs.interruption_service[i] == kUnresolved) {
      report_unknown(
          services, interruption.service,
          [&] { return path_key(path_index(interruptions_path, i), "service"); }, "service",
          errors);
    }
    const uint32_t first = refs.named_first[i];
    for (std::size_t j = 0; j < interruption.customers.size(); ++j) {
      if (refs.named[first + j] != kUnresolved) continue;
      report_unknown(
          customers, interruption.customers[j],
          [&] { return path_index(path_key(path_index(interruptions_path, i), "customers"), j); },
          "customer", errors);
    }
  }
}

Json to_json(const Dataset& value) {
  Json out = {{"timezone", value.timezone},
              {"fiscal_year_start_month", value.fiscal_year_start_month},
              {"calendars", list_to_json(value.calendars)},
              {"services", list_to_json(value.services)},
              {"customers", list_to_json(value.customers)},
              {"maintenance", list_to_json(value.maintenance)},
              {"interruptions", list_to_json(value.interruptions)}};
  if (value.provider_calendar) out["provider_calendar"] = *value.provider_calendar;
  if (value.credit_policy) out["credit_policy"] = to_json(*value.credit_policy);
  return out;
}

// ---- throwing readers --------------------------------------------------------------------

CalendarDef parse_calendar(const Json& json) {
  return parse_root<CalendarDef>(json, calendar_from_json);
}
CreditPolicy parse_credit_policy(const Json& json) {
  return parse_root<CreditPolicy>(json, credit_policy_from_json);
}
Service parse_service(const Json& json) { return parse_root<Service>(json, service_from_json); }
Subscription parse_subscription(const Json& json) {
  return parse_root<Subscription>(json, subscription_from_json);
}
Contact parse_contact(const Json& json) { return parse_root<Contact>(json, contact_from_json); }
Customer parse_customer(const Json& json) { return parse_root<Customer>(json, customer_from_json); }
MaintenanceWindow parse_maintenance_window(const Json& json) {
  return parse_root<MaintenanceWindow>(json, maintenance_window_from_json);
}
Interruption parse_interruption(const Json& json) {
  return parse_root<Interruption>(json, interruption_from_json);
}
Dataset parse_dataset(const Json& json) { return parse_root<Dataset>(json, dataset_from_json); }

}  // namespace slmhub
