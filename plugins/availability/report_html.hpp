// The publishable Service Availability Report as one self-contained HTML page (DOMAIN.md §5,
// DESIGN.md §5.2 `/reports/availability/{YYYY-MM}`, `--format html`): inline CSS and SVG, no
// script, no external reference, printable on A4. A pure function of the detailed report JSON
// (report_to_json with details) and the report's workflow state, so the offline command and the
// served page print the same document for the same figures.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slmhub/json.hpp"

namespace slmhub::availability {

// A Service Interruption Analysis linked from a missed service (DOMAIN.md §6).
struct SiaRef {
  std::string id;
  std::string interruption;
  std::string state;
};

// What the page says about the report itself, beyond the figures.
struct PageMeta {
  std::string state;  // "computed" offline; "draft"/"reviewed"/"approved"/"published" served
  int revision = 0;   // 0 offline
  // The initialisers let callers name only what they have: PageMeta{.state = "draft"}.
  std::optional<std::string> due_date{};              // "YYYY-MM-DD"
  std::optional<std::string> analysis_deadline{};     // "YYYY-MM-DD"
  std::optional<std::string> published_at{};          // ISO instant
  std::map<std::string, std::vector<SiaRef>> sias{};  // by service id
};

// The page for `detailed_report`: the §5.4 document plus, per service, `name`, `environment`,
// `timezone`, `period`, `maintenance_budget_seconds`, `maintenance_budget_used_seconds` and
// `timeline`, per credit `customer_name` and `billing_code`, and an optional `as_of`. Exact
// figures sit in `<data value=... data-field=...>` elements inside `data-service` sections and
// `data-credit` rows, so tests and scrapers read numbers, not formatted text. Throws
// nlohmann::json::exception (or std::invalid_argument for a percentage that is not a plain
// decimal) when the document does not have that shape.
std::string render_report_html(const Json& detailed_report, const PageMeta& meta);

// Integer cents as a decimal amount with thousands separators: 123456789 → "1,234,567.89",
// -100 → "-1.00". Never through floating point.
std::string format_cents(int64_t cents);

// Seconds as hours, minutes and seconds from the largest non-zero unit: 15000 → "4 h 10 min
// 0 s", 100 → "1 min 40 s", 0 → "0 s".
std::string format_duration(int64_t seconds);

}  // namespace slmhub::availability
