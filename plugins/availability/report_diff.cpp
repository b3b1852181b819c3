#include "report_diff.hpp"

#include <map>
#include <string>
#include <utility>

namespace slmhub::availability {
namespace {

// The §5.4 fields of each kind of row, and a credit's billing code (the work order's credit
// form names it, so a corrected one needs a revision to get there); detail fields
// (timelines, names) are presentation and would only repeat what the figures already say.
constexpr const char* kServiceFields[] = {"target_percent",
                                          "scheduled_seconds",
                                          "excluded_maintenance_seconds",
                                          "downtime_seconds",
                                          "allowed_downtime_seconds",
                                          "excess_downtime_seconds",
                                          "availability_percent",
                                          "met",
                                          "interruptions",
                                          "maintenance_downtime",
                                          "customers_impacted"};
constexpr const char* kCreditFields[] = {
    "downtime_seconds", "excess_downtime_seconds", "monthly_charge_cents", "credit_cents",
    "interruptions",    "maintenance_downtime",    "billing_code"};

// A row's identity: the service, and for a credit its customer. Kept apart, not joined into
// one text, since ids may hold any character: "a/b" + "c" and "a" + "b/c" are two rows.
using RowKey = std::pair<std::string, std::string>;

template <typename Key>
std::map<RowKey, const Json*> by_key(const Json& document, const char* list, Key key) {
  std::map<RowKey, const Json*> out;
  if (!document.contains(list)) return out;
  for (const auto& row : document.at(list)) out.emplace(key(row), &row);
  return out;
}

// The row as a change's path names it: services[oracle-prod], credits[oracle-prod/library].
std::string path_of(const char* list, const RowKey& key) {
  return std::string(list) + "[" + key.first + (key.second.empty() ? "" : "/" + key.second) + "]";
}

template <std::size_t N, typename Key>
void compare(const Json& before, const Json& after, const char* list,
             const char* const (&fields)[N], Key key, Json& changes) {
  const auto old_rows = by_key(before, list, key);
  const auto new_rows = by_key(after, list, key);
  auto add = [&](const std::string& path, const Json& was, const Json& is) {
    changes.push_back({{"path", path}, {"before", was}, {"after", is}});
  };
  for (const auto& [id, row] : old_rows) {
    const std::string at = path_of(list, id);
    auto it = new_rows.find(id);
    if (it == new_rows.end()) {
      add(at, *row, nullptr);
      continue;
    }
    for (const char* field : fields) {
      const Json was = row->value(field, Json());
      const Json is = it->second->value(field, Json());
      if (was != is) add(at + "." + field, was, is);
    }
  }
  for (const auto& [id, row] : new_rows) {
    if (!old_rows.contains(id)) add(path_of(list, id), nullptr, *row);
  }
}

std::string text(const Json& row, const char* key) {
  auto it = row.find(key);
  return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Json report_changes(const Json& before, const Json& after) {
  Json changes = Json::array();
  compare(
      before, after, "services", kServiceFields,
      [](const Json& row) {
        return RowKey{text(row, "service"), ""};
      },
      changes);
  compare(
      before, after, "credits", kCreditFields,
      [](const Json& row) {
        return RowKey{text(row, "service"), text(row, "customer")};
      },
      changes);
  return changes;
}

}  // namespace slmhub::availability
