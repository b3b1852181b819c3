// The publishable report page. Every chart coordinate is integer arithmetic on seconds or on
// integer ten-thousandths of a percent, and every amount is formatted from integer cents, so
// the page shows exactly the figures of the report and the same input always gives the same
// bytes. The page carries a Content-Security-Policy that forbids scripts and every fetch: even
// a name that slipped past escaping could not run code or make a request.
#include "report_html.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

#include "slmhub/digest.hpp"
#include "slmhub/time.hpp"

namespace slmhub::availability {
namespace {

// Every chart shares one geometry: a label column, then the plot. The viewBox is about the
// width of a service section on an A4 page at 96 dpi, so SVG units are close to CSS pixels.
constexpr int64_t kChartWidth = 720;
constexpr int64_t kPlotLeft = 110;
constexpr int64_t kPlotWidth = 600;
constexpr int64_t kPlotRight = kPlotLeft + kPlotWidth;
constexpr int64_t kHundredPercent = 1'000'000;  // in ten-thousandths of a percent

constexpr const char* kGreen = "#2e7d32";
constexpr const char* kRed = "#c62828";
constexpr const char* kOrange = "#ef6c00";
constexpr const char* kBlue = "#1565c0";
constexpr const char* kGrey = "#9e9e9e";

constexpr const char* kStyle = R"(
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 794px; padding: 20px 24px; color: #1a1a1a; background: #fff;
  font: 13px/1.4 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 17px; border-bottom: 2px solid #333; padding-bottom: 2px; margin: 22px 0 8px;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 15px; margin: 0 0 2px; }
h4 { font-size: 13px; margin: 10px 0 4px; break-after: avoid; page-break-after: avoid; }
p { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #ddd; vertical-align: top; }
thead th { border-bottom: 2px solid #999; font-size: 12px; }
tr { break-inside: avoid; page-break-inside: avoid; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.muted { color: #555; font-size: 12px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0 12px; margin: 8px 0; }
.meta dt { font-weight: bold; }
.meta dd { margin: 0; }
.banner { border: 1px solid #b26a00; background: #fff4e0; padding: 4px 8px; margin: 8px 0; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px;
  color: #fff; vertical-align: middle; }
.badge.met { background: #2e7d32; }
.badge.missed { background: #c62828; }
section.service { border: 1px solid #bbb; border-radius: 4px; padding: 10px 12px; margin: 10px 0;
  break-inside: avoid; page-break-inside: avoid; }
figure { margin: 6px 0; }
figcaption { font-size: 12px; color: #333; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px "DejaVu Sans", "Liberation Sans", Arial, sans-serif; fill: #1a1a1a; }
.legend { font-size: 12px; }
.legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
tfoot td { font-weight: bold; border-top: 2px solid #999; }
@media print {
  body { max-width: none; padding: 0; }
  h2.credits { break-before: auto; }
}
)";

std::string esc(std::string_view text) { return escape_html(text); }

// `value` on an axis of `span` drawn kPlotWidth wide, clamped to the axis; 128-bit because
// seconds × width is computed before the division.
int64_t scale(int64_t value, int64_t span) {
  if (span <= 0) return 0;
  value = std::clamp<int64_t>(value, 0, span);
  return static_cast<int64_t>(static_cast<__int128>(value) * kPlotWidth / span);
}

// A percentage from the JSON number's shortest decimal text ("99.4189", "99.75", "100") as
// integer ten-thousandths, so chart positions never go through binary floating point.
int64_t ten_thousandths(const Json& number, std::string_view key) {
  const std::string text = number.dump();
  int64_t whole = 0;
  int64_t fraction = 0;
  int digits = 0;
  bool point = false;
  const auto bad = [&] {
    return std::invalid_argument(std::string(key) + ": '" + text +
                                 "' is not a percentage in [0, 100] with at most 4 decimals");
  };
  for (char c : text) {
    if (c == '.' && !point) {
      point = true;
    } else if (c < '0' || c > '9' || (point && digits == 4) || whole > 100) {
      throw bad();
    } else if (point) {
      fraction = fraction * 10 + (c - '0');
      ++digits;
    } else {
      whole = whole * 10 + (c - '0');
    }
  }
  for (; digits < 4; ++digits) fraction *= 10;
  const int64_t value = whole * 10'000 + fraction;
  if (value > kHundredPercent) throw bad();
  return value;
}

// The page's percentages are the JSON numbers' own text: "99.4189", not a re-rounded float.
std::string percent_text(const Json& number) { return number.dump() + " %"; }

std::string month_title(const std::string& month_text) {
  static constexpr std::array<const char*, 12> kMonths = {
      "January", "February", "March",     "April",   "May",      "June",
      "July",    "August",   "September", "October", "November", "December"};
  const date::year_month month = parse_month(month_text);
  return std::string(kMonths[static_cast<unsigned>(month.month()) - 1]) + " " +
         std::to_string(static_cast<int>(month.year()));
}

// Local wall time with the zone abbreviation, in a <time> element carrying the UTC instant.
// Seconds are shown only when the instant has them, so common whole-minute times stay short.
std::string time_element(const std::string& iso, const date::time_zone* zone) {
  const Instant t = parse_instant(iso);
  const char* format =
      t.time_since_epoch().count() % 60 == 0 ? "%Y-%m-%d %H:%M %Z" : "%Y-%m-%d %H:%M:%S %Z";
  return "<time datetime=\"" + esc(format_instant(t)) + "\">" +
         esc(date::format(format, date::make_zoned(zone, t))) + "</time>";
}

// An exact figure: the machine value in `value`, the reader's text as content.
std::string data_element(std::string_view field, const std::string& value,
                         const std::string& shown) {
  return "<data value=\"" + esc(value) + "\" data-field=\"" + esc(field) + "\">" + shown +
         "</data>";
}

std::string seconds_data(std::string_view field, int64_t seconds) {
  const std::string exact = std::to_string(seconds);
  return data_element(field, exact, exact);
}

std::string joined(const Json& list) {
  std::string text;
  for (const auto& item : list) text += (text.empty() ? "" : ", ") + esc(item.get<std::string>());
  return text.empty() ? "&mdash;" : text;
}

std::string svg_open(int64_t height, const std::string& label) {
  return "<svg viewBox=\"0 0 " + std::to_string(kChartWidth) + " " + std::to_string(height) +
         "\" role=\"img\" aria-label=\"" + esc(label) + "\"><title>" + esc(label) + "</title>";
}

// `attributes` and `title` are markup (already escaped); a title is the hover text.
std::string rect(int64_t x, int64_t y, int64_t width, int64_t height, const char* fill,
                 const std::string& attributes = {}, const std::string& title = {}) {
  return "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" +
         std::to_string(width) + "\" height=\"" + std::to_string(height) + "\" fill=\"" + fill +
         "\"" + attributes + (title.empty() ? "/>" : "><title>" + title + "</title></rect>");
}

// Text anchored so that it stays inside the chart near either edge.
std::string text_at(int64_t x, int64_t y, const std::string& escaped, bool bold = false) {
  const char* anchor = x < kPlotLeft + 60 ? "start" : x > kPlotRight - 60 ? "end" : "middle";
  return "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" text-anchor=\"" +
         anchor + "\"" + (bold ? " font-weight=\"bold\"" : "") + ">" + escaped + "</text>";
}

std::string label_column(const std::string& title, const std::string& value) {
  return "<text x=\"0\" y=\"27\">" + esc(title) + "</text><text x=\"0\" y=\"42\" " +
         "font-weight=\"bold\">" + esc(value) + "</text>";
}

std::string marker(int64_t x, int64_t top, int64_t bottom) {
  return "<line x1=\"" + std::to_string(x) + "\" y1=\"" + std::to_string(top) + "\" x2=\"" +
         std::to_string(x) + "\" y2=\"" + std::to_string(bottom) +
         "\" stroke=\"#000\" stroke-width=\"2\"/>";
}

// Availability against target on an axis that ends at 100 % and starts low enough to show
// both with room to spare: a 0-100 % axis would squeeze 99.4 % and 99.75 % into one pixel.
std::string availability_chart(const Json& service) {
  const Json& availability_json = service.at("availability_percent");
  const Json& target_json = service.at("target_percent");
  const int64_t availability = ten_thousandths(availability_json, "availability_percent");
  const int64_t target = ten_thousandths(target_json, "target_percent");
  const int64_t shortfall =
      std::max(kHundredPercent - availability, kHundredPercent - target) * 3 / 2;
  // Round axis lengths (0.01 % to 100 %), so the tick labels are short decimals.
  static constexpr std::array<int64_t, 13> kSpans = {
      100,    200,    500,     1'000,   2'000,   5'000,          10'000,
      20'000, 50'000, 100'000, 200'000, 500'000, kHundredPercent};
  const int64_t span =
      *std::find_if(kSpans.begin(), kSpans.end() - 1, [&](int64_t s) { return s >= shortfall; });
  const int64_t floor = kHundredPercent - span;
  const bool met = service.at("met").get<bool>();
  const int64_t target_x = kPlotLeft + scale(target - floor, span);

  std::string svg = svg_open(60, "Availability " + percent_text(availability_json) +
                                     " against a target of " + percent_text(target_json));
  svg += label_column("availability", percent_text(availability_json));
  svg += rect(kPlotLeft, 16, kPlotWidth, 20, "#eeeeee");
  svg += rect(kPlotLeft, 16, scale(availability - floor, span), 20, met ? kGreen : kRed);
  svg += marker(target_x, 13, 39);
  svg += text_at(target_x, 10, esc("target " + percent_text(target_json)));
  svg += text_at(kPlotLeft, 54, esc(decimal_text(floor, 4) + " %"));
  svg += text_at(kPlotLeft + kPlotWidth / 2, 54, esc(decimal_text(floor + span / 2, 4) + " %"));
  svg += text_at(kPlotRight, 54, "100 %");
  return svg + "</svg>";
}

// `used` seconds against a `limit`: the part within the limit in `fill`, any part beyond it
// in red, the limit as a marker.
std::string usage_chart(const std::string& title, int64_t used, int64_t limit,
                        const std::string& limit_word, const char* fill) {
  const int64_t span = std::max<int64_t>({used, limit, 1});
  const int64_t limit_x = kPlotLeft + scale(limit, span);
  std::string svg = svg_open(
      60, title + " " + format_duration(used) + " of " + format_duration(limit) + " " + limit_word);
  svg += label_column(title, format_duration(used));
  svg += rect(kPlotLeft, 16, kPlotWidth, 20, "#eeeeee");
  svg += rect(kPlotLeft, 16, scale(limit, span), 20, "#dcedc8");
  svg += rect(kPlotLeft, 16, scale(std::min(used, limit), span), 20, fill);
  if (used > limit) svg += rect(limit_x, 16, scale(used, span) - scale(limit, span), 20, kRed);
  svg += marker(limit_x, 13, 39);
  svg += text_at(limit_x, 10, esc(limit_word + " " + format_duration(limit)));
  svg += text_at(kPlotLeft, 54, "0");
  svg += text_at(kPlotRight, 54, esc(format_duration(span)));
  return svg + "</svg>";
}

// "232 % of the allowed downtime": how far into a limit, in whole percent (rounded down).
std::string share_of(int64_t used, int64_t limit, const std::string& of_what) {
  if (limit <= 0) return used > 0 ? "none allowed" : "none allowed, none used";
  return std::to_string(static_cast<int64_t>(static_cast<__int128>(used) * 100 / limit)) +
         " % of " + of_what;
}

const char* entry_colour(const Json& entry) {
  const std::string kind = entry.at("kind").get<std::string>();
  if (kind == "maintenance_downtime") return kOrange;
  if (kind == "excluded_maintenance") return kBlue;
  return entry.at("seconds").get<int64_t>() > 0 ? kRed : kGrey;
}

std::string entry_kind(const Json& entry) {
  const std::string kind = entry.at("kind").get<std::string>();
  if (kind == "maintenance_downtime") return "maintenance, counted as downtime";
  if (kind == "excluded_maintenance") return "maintenance, excluded";
  return "interruption";
}

// The month as a Gantt chart: one row per timeline entry, days as columns (weekends shaded),
// each entry a bar from its start to its end. Bars are at least 3 units wide so that a
// ten-minute interruption in a 30-day month is still visible.
std::string timeline_chart(const Json& service, const date::time_zone* zone) {
  const Instant start = parse_instant(service.at("period").at("start").get<std::string>());
  const Instant end = parse_instant(service.at("period").at("end").get<std::string>());
  const int64_t span = (end - start).count();
  const Json& entries = service.at("timeline");
  constexpr int64_t kTop = 22;
  constexpr int64_t kRow = 18;
  const int64_t rows = std::max<int64_t>(static_cast<int64_t>(entries.size()), 1);
  const int64_t height = kTop + rows * kRow + 4;
  const auto x_of = [&](Instant t) { return kPlotLeft + scale((t - start).count(), span); };

  std::string svg = svg_open(height, "Interruptions and maintenance in the month");
  for (date::year_month_day day = local_date(start, zone);;
       day = date::sys_days{day} + date::days{1}) {
    const Instant midnight = local_to_utc(date::local_seconds{date::local_days{day}}, zone);
    if (midnight >= end) break;
    const Instant next = std::min(
        end, local_to_utc(date::local_seconds{date::local_days{day} + date::days{1}}, zone));
    const Instant from = std::max(midnight, start);
    const int64_t x = x_of(from);
    const date::weekday weekday{date::sys_days{day}};
    if (weekday == date::Saturday || weekday == date::Sunday) {
      svg += rect(x, kTop, x_of(next) - x, rows * kRow, "#f0f0f0");
    }
    svg += "<line x1=\"" + std::to_string(x) + "\" y1=\"" + std::to_string(kTop - 4) + "\" x2=\"" +
           std::to_string(x) + "\" y2=\"" + std::to_string(kTop + rows * kRow) +
           "\" stroke=\"#d0d0d0\" stroke-width=\"1\"/>";
    if (x_of(next) - x >= 12) {
      svg += "<text x=\"" + std::to_string(x + 2) + "\" y=\"" + std::to_string(kTop - 8) +
             "\" font-size=\"9\">" + std::to_string(static_cast<unsigned>(day.day())) + "</text>";
    }
  }
  svg += "<text x=\"0\" y=\"" + std::to_string(kTop - 8) + "\" font-size=\"9\">day</text>";
  if (entries.empty()) {
    svg += "<text x=\"" + std::to_string(kPlotLeft + 8) + "\" y=\"" + std::to_string(kTop + 13) +
           "\">no interruptions or maintenance</text>";
  }
  int64_t y = kTop;
  for (const auto& entry : entries) {
    const std::string id = entry.at("id").get<std::string>();
    int64_t x = x_of(parse_instant(entry.at("start").get<std::string>()));
    const int64_t x_end = x_of(parse_instant(entry.at("end").get<std::string>()));
    x = std::min(x, kPlotRight - 3);
    svg += "<text x=\"0\" y=\"" + std::to_string(y + 13) + "\">" + esc(id) + "</text>";
    svg += rect(x, y + 3, std::max<int64_t>(x_end - x, 3), kRow - 6, entry_colour(entry),
                " data-entry=\"" + esc(id) + "\"",
                esc(id) + ": " + esc(entry_kind(entry)) + ", " +
                    format_duration(entry.at("seconds").get<int64_t>()) + " counted");
    y += kRow;
  }
  svg += "<rect x=\"" + std::to_string(kPlotLeft) + "\" y=\"" + std::to_string(kTop) +
         "\" width=\"" + std::to_string(kPlotWidth) + "\" height=\"" + std::to_string(rows * kRow) +
         "\" fill=\"none\" stroke=\"#999\"/>";
  return svg + "</svg>";
}

std::string legend() {
  const auto item = [](const char* colour, const char* text) {
    return std::string("<span><i class=\"swatch\" style=\"background:") + colour + "\"></i>" +
           text + "</span>";
  };
  return "<p class=\"legend\">" + item(kRed, "interruption (downtime)") +
         item(kGrey, "interruption, not counted") + item(kOrange, "maintenance as downtime") +
         item(kBlue, "maintenance, excluded") + "</p>";
}

std::string figure_row(const std::string& label, std::string_view field, int64_t seconds) {
  return "<tr><th scope=\"row\">" + label + "</th><td>" + format_duration(seconds) +
         "</td><td class=\"num\">" + seconds_data(field, seconds) + " s</td></tr>\n";
}

std::string entries_table(const Json& entries, const date::time_zone* zone) {
  if (entries.empty()) return "<p>No interruptions or maintenance were recorded.</p>\n";
  std::string html =
      "<table class=\"entries\"><thead><tr><th>Entry</th><th>Kind</th><th>Start</th>"
      "<th>End</th><th class=\"num\">Counted</th><th>Customers impacted</th></tr></thead><tbody>\n";
  for (const auto& entry : entries) {
    const std::string id = entry.at("id").get<std::string>();
    const int64_t seconds = entry.at("seconds").get<int64_t>();
    html +=
        "<tr data-entry=\"" + esc(id) + "\"><td>" + esc(id) + "</td><td>" + esc(entry_kind(entry)) +
        "</td><td>" + time_element(entry.at("start").get<std::string>(), zone) + "</td><td>" +
        time_element(entry.at("end").get<std::string>(), zone) + "</td><td class=\"num\">" +
        format_duration(seconds) + "<br><span class=\"muted\">" + seconds_data("seconds", seconds) +
        " s</span></td><td>" + joined(entry.at("customers")) + "</td></tr>\n";
  }
  return html +
         "</tbody></table>\n<p class=\"muted\">Counted: seconds inside service hours. Entries "
         "that overlap count once in the service's downtime; excluded maintenance wins over "
         "downtime for the same seconds.</p>\n";
}

std::string sias_list(const std::string& service_id, const PageMeta& meta) {
  const auto found = meta.sias.find(service_id);
  if (found == meta.sias.end() || found->second.empty()) {
    return "<p data-field=\"sias\">None recorded.</p>\n";
  }
  std::string html = "<ul data-field=\"sias\">";
  for (const auto& sia : found->second) {
    html += "<li data-sia=\"" + esc(sia.id) + "\">" + esc(sia.id) + " for " +
            esc(sia.interruption) + " (" + esc(sia.state) + ")</li>";
  }
  return html + "</ul>\n";
}

std::string service_section(const Json& service, const PageMeta& meta) {
  const std::string id = service.at("service").get<std::string>();
  const std::string name = service.value("name", id);
  const date::time_zone* zone = find_zone(service.value("timezone", std::string("UTC")));
  const bool met = service.at("met").get<bool>();
  const int64_t downtime = service.at("downtime_seconds").get<int64_t>();
  const int64_t allowed = service.at("allowed_downtime_seconds").get<int64_t>();
  const int64_t budget = service.at("maintenance_budget_seconds").get<int64_t>();
  const int64_t budget_used = service.at("maintenance_budget_used_seconds").get<int64_t>();

  std::string html = "<section class=\"service\" data-service=\"" + esc(id) + "\" data-met=\"" +
                     (met ? "true" : "false") + "\">\n";
  html += "<h3>" + esc(name) + " <span class=\"badge " + (met ? "met\">met" : "missed\">missed") +
          "</span></h3>\n";
  html += "<p class=\"muted\">" + esc(id);
  if (service.contains("environment"))
    html += " &middot; " + esc(service.at("environment").get<std::string>());
  html += " &middot; " + esc(zone->name()) + " &middot; measured from " +
          time_element(service.at("period").at("start").get<std::string>(), zone) + " to " +
          time_element(service.at("period").at("end").get<std::string>(), zone) + "</p>\n";

  html += "<table class=\"figures\"><tbody>\n";
  html += figure_row("Scheduled service time", "scheduled_seconds",
                     service.at("scheduled_seconds").get<int64_t>());
  html += figure_row("Excluded maintenance", "excluded_maintenance_seconds",
                     service.at("excluded_maintenance_seconds").get<int64_t>());
  html += figure_row("Downtime", "downtime_seconds", downtime);
  html += figure_row("Allowed downtime", "allowed_downtime_seconds", allowed);
  html += figure_row("Excess downtime", "excess_downtime_seconds",
                     service.at("excess_downtime_seconds").get<int64_t>());
  const Json& availability = service.at("availability_percent");
  const Json& target = service.at("target_percent");
  html += "<tr><th scope=\"row\">Availability</th><td colspan=\"2\">" +
          data_element("availability_percent", availability.dump(), availability.dump()) +
          " % against a target of " + data_element("target_percent", target.dump(), target.dump()) +
          " %</td></tr>\n";
  html += "</tbody></table>\n";

  html += "<figure>" + availability_chart(service) + "</figure>\n";
  html += "<figure>" + usage_chart("downtime", downtime, allowed, "allowed", kGreen) +
          "<figcaption>Downtime against the SLA: " +
          share_of(downtime, allowed, "the allowed downtime") + ".</figcaption></figure>\n";
  html += "<figure>" + usage_chart("maintenance", budget_used, budget, "budget", kBlue) +
          "<figcaption>Planned maintenance excluded in the fiscal year up to the end of the "
          "period: " +
          seconds_data("maintenance_budget_used_seconds", budget_used) + " s of " +
          seconds_data("maintenance_budget_seconds", budget) + " s (" +
          share_of(budget_used, budget, "the yearly budget") + ").</figcaption></figure>\n";
  html += "<figure>" + timeline_chart(service, zone) + legend() + "</figure>\n";

  if (!met) {
    html += "<h4>Interruptions and maintenance</h4>\n" +
            entries_table(service.at("timeline"), zone) + "<h4>Related SIAs</h4>\n" +
            sias_list(id, meta);
  }
  return html + "</section>\n";
}

std::string summary_table(const Json& services) {
  std::string html =
      "<table class=\"summary\"><thead><tr><th>Service</th><th class=\"num\">Target</th>"
      "<th class=\"num\">Availability</th><th class=\"num\">Downtime</th><th class=\"num\">"
      "Allowed</th><th>SLA</th></tr></thead><tbody>\n";
  for (const auto& s : services) {
    const bool met = s.at("met").get<bool>();
    html += "<tr><td>" + esc(s.value("name", s.at("service").get<std::string>())) + "</td>" +
            "<td class=\"num\">" + percent_text(s.at("target_percent")) + "</td>" +
            "<td class=\"num\">" + percent_text(s.at("availability_percent")) + "</td>" +
            "<td class=\"num\">" + format_duration(s.at("downtime_seconds").get<int64_t>()) +
            "</td><td class=\"num\">" +
            format_duration(s.at("allowed_downtime_seconds").get<int64_t>()) + "</td><td>" +
            "<span class=\"badge " + (met ? "met\">met" : "missed\">missed") +
            "</span></td></tr>\n";
  }
  return html + "</tbody></table>\n";
}

std::string credits_table(const Json& report) {
  const Json& credits = report.at("credits");
  if (credits.empty()) {
    return "<p>No credits: no customer's downtime exceeded the SLA.</p>\n";
  }
  std::string html =
      "<table class=\"credits\"><thead><tr><th>Customer</th><th>Billing code</th><th>Service</th>"
      "<th class=\"num\">Downtime</th><th class=\"num\">Excess</th><th class=\"num\">Monthly "
      "charge</th><th class=\"num\">Credit</th></tr></thead><tbody>\n";
  int64_t total_cents = 0;
  for (const auto& c : credits) {
    const std::string customer = c.at("customer").get<std::string>();
    const std::string service = c.at("service").get<std::string>();
    const int64_t downtime = c.at("downtime_seconds").get<int64_t>();
    const int64_t excess = c.at("excess_downtime_seconds").get<int64_t>();
    const int64_t charge = c.at("monthly_charge_cents").get<int64_t>();
    const int64_t credit = c.at("credit_cents").get<int64_t>();
    total_cents += credit;
    html +=
        "<tr data-credit=\"" + esc(customer) + "/" + esc(service) + "\"><td>" +
        esc(c.value("customer_name", customer)) + "<br><span class=\"muted\">" + esc(customer) +
        "</span></td><td>" + esc(c.value("billing_code", "")) + "</td><td>" + esc(service) +
        "</td><td class=\"num\">" +
        data_element("downtime_seconds", std::to_string(downtime), format_duration(downtime)) +
        "</td><td class=\"num\">" +
        data_element("excess_downtime_seconds", std::to_string(excess), format_duration(excess)) +
        "</td><td class=\"num\">" +
        data_element("monthly_charge_cents", std::to_string(charge), format_cents(charge)) +
        "</td><td class=\"num\">" +
        data_element("credit_cents", std::to_string(credit), format_cents(credit)) + "</td></tr>\n";
  }
  html +=
      "</tbody><tfoot><tr><td colspan=\"6\">Total credits</td><td class=\"num\">" +
      data_element("total_credit_cents", std::to_string(total_cents), format_cents(total_cents)) +
      "</td></tr></tfoot></table>\n";
  return html +
         "<p class=\"muted\">Downtime and excess are each customer's own: the interruptions that "
         "impacted that customer plus maintenance downtime. Amounts in the billing currency, "
         "rounded half up to the cent once.</p>\n";
}

std::string header(const Json& report, const PageMeta& meta) {
  const std::string month = report.at("month").get<std::string>();
  std::string html = "<header>\n<h1>Service Availability Report</h1>\n<p class=\"month\">" +
                     esc(month_title(month)) + "</p>\n<dl class=\"meta\"><dt>State</dt><dd " +
                     "data-field=\"state\">" + esc(meta.state) + "</dd>";
  if (meta.revision > 0) {
    html += "<dt>Revision</dt><dd>" + std::to_string(meta.revision) + "</dd>";
  }
  if (meta.analysis_deadline) {
    html += "<dt>Analysis due</dt><dd>" + esc(*meta.analysis_deadline) + "</dd>";
  }
  if (meta.due_date) html += "<dt>Report due</dt><dd>" + esc(*meta.due_date) + "</dd>";
  const date::time_zone* utc = find_zone("UTC");
  if (meta.published_at) {
    html += "<dt>Published</dt><dd>" + time_element(*meta.published_at, utc) + "</dd>";
  }
  if (report.contains("as_of")) {
    html += "<dt>Figures as of</dt><dd>" +
            time_element(report.at("as_of").get<std::string>(), utc) +
            " (the month was still under way)</dd>";
  }
  html += "</dl>\n";
  if (meta.state != "published") {
    html += "<p class=\"banner\">Not published: this report is " + esc(meta.state) +
            " and its figures may still change.</p>\n";
  }
  return html + "</header>\n";
}

}  // namespace

std::string format_cents(int64_t cents) {
  // Unsigned magnitude, so that the most negative int64 has one too.
  const uint64_t magnitude =
      cents < 0 ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const std::string units = std::to_string(magnitude / 100);
  std::string grouped;
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (i > 0 && (units.size() - i) % 3 == 0) grouped += ',';
    grouped += units[i];
  }
  const uint64_t rest = magnitude % 100;
  return (cents < 0 ? "-" : "") + grouped + (rest < 10 ? ".0" : ".") + std::to_string(rest);
}

std::string format_duration(int64_t seconds) {
  const uint64_t magnitude =
      seconds < 0 ? 0 - static_cast<uint64_t>(seconds) : static_cast<uint64_t>(seconds);
  const uint64_t hours = magnitude / 3600;
  const uint64_t minutes = magnitude % 3600 / 60;
  std::string text = seconds < 0 ? "-" : "";
  if (hours > 0) text += std::to_string(hours) + " h ";
  if (hours > 0 || minutes > 0) text += std::to_string(minutes) + " min ";
  return text + std::to_string(magnitude % 60) + " s";
}

std::string render_report_html(const Json& detailed_report, const PageMeta& meta) {
  const Json& services = detailed_report.at("services");
  const std::string month = detailed_report.at("month").get<std::string>();
  std::string met_sections;
  std::string missed_sections;
  for (const auto& service : services) {
    (service.at("met").get<bool>() ? met_sections : missed_sections) +=
        service_section(service, meta);
  }

  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"
      "Service Availability Report " +
      esc(month) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  html += header(detailed_report, meta);
  html += "<h2>Summary</h2>\n" + summary_table(services);
  html += "<h2 class=\"met\">Services that met their SLA</h2>\n";
  html += !met_sections.empty()     ? met_sections
          : missed_sections.empty() ? "<p>No service is on this report.</p>\n"
                                    : "<p>No service met its SLA.</p>\n";
  html += "<h2 class=\"missed\">Services that missed their SLA</h2>\n";
  html += !missed_sections.empty() ? missed_sections
          : met_sections.empty()   ? "<p>No service is on this report.</p>\n"
                                   : "<p>Every service met its SLA.</p>\n";
  html += "<h2 class=\"credits\">SLA credits</h2>\n" + credits_table(detailed_report);
  html +=
      "<footer class=\"muted\"><p>Figures in whole seconds of service time; availability is "
      "rounded to 4 decimals for display only and met / missed is decided on exact seconds. "
      "Generated by slmhub.</p></footer>\n</body>\n</html>\n";
  return html;
}

}  // namespace slmhub::availability
