#include "rules.hpp"

namespace slmhub::alerts {
namespace {

constexpr int kNoticeBusinessDays = 5;
constexpr std::int64_t kProductionOutageNotice = 14 * 24 * 3600;

std::string local_text(Instant t, const date::time_zone* zone) {
  return date::format("%a %Y-%m-%d %H:%M %Z", date::make_zoned(zone, t));
}

}  // namespace

std::string window_text(Instant start, Instant end, const date::time_zone* zone) {
  const auto s = date::make_zoned(zone, start);
  const auto e = date::make_zoned(zone, end);
  if (local_date(start, zone) == local_date(end, zone)) {
    // A window across a change of clocks (01:00 CDT-03:00 CST) names both: the end's zone
    // alone would put the start an hour off.
    const bool one_offset = date::format("%Z", s) == date::format("%Z", e);
    return date::format(one_offset ? "%a %d %b %Y %H:%M" : "%a %d %b %Y %H:%M %Z", s) + "–" +
           date::format("%H:%M %Z", e);
  }
  return date::format("%a %d %b %Y %H:%M %Z", s) + " – " + date::format("%a %d %b %Y %H:%M %Z", e);
}

bool pre_approved(const MaintenanceWindow& w, Environment environment,
                  const BusinessCalendar& provider) {
  if (w.category != MaintenanceCategory::planned_outage || !w.announced_at) return false;
  if (environment == Environment::production)
    return (w.start - *w.announced_at).count() >= kProductionOutageNotice;
  return provider.gives_notice(*w.announced_at, w.start, kNoticeBusinessDays);
}

std::string describe_duration(std::int64_t seconds) {
  if (seconds < 0) return "-" + describe_duration(-seconds);
  const std::int64_t days = seconds / 86400;
  const std::int64_t hours = seconds % 86400 / 3600;
  const std::int64_t minutes = seconds % 3600 / 60;
  auto unit = [](std::int64_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
  };
  std::string out;
  if (days) out = unit(days, "day");
  if (hours) out += (out.empty() ? "" : " ") + unit(hours, "hour");
  if (minutes && !days) out += (out.empty() ? "" : " ") + unit(minutes, "minute");
  return out.empty() ? unit(seconds, "second") : out;
}

Verdict check_window(const MaintenanceWindow& window, Environment environment, Instant announced,
                     const BusinessCalendar& provider, const BusinessCalendar* service_hours) {
  Verdict v;
  v.implied = window.category;
  const std::int64_t notice = (window.start - announced).count();
  const std::string given = "announced " + local_text(announced, provider.zone()) +
                            " for a start at " + local_text(window.start, provider.zone());
  if (window.category == MaintenanceCategory::planned_outage) {
    if (environment == Environment::production) {
      if (notice < kProductionOutageNotice) {
        // Under 5 business days is what an emergency is; between that and 14 days no category
        // fits: it stays a planned outage announced too late (downtime, DOMAIN.md §3).
        const bool short_notice =
            !provider.gives_notice(announced, window.start, kNoticeBusinessDays);
        if (short_notice) v.implied = MaintenanceCategory::emergency;
        v.breaches.push_back(
            {"notice.planned_outage", "$.category",
             "a production planned outage needs 14 days' notice; it was " + given + " (" +
                 describe_duration(notice) + ")" +
                 (short_notice ? "" : ": not pre-approved, it counts as downtime")});
      }
    } else if (!provider.gives_notice(announced, window.start, kNoticeBusinessDays)) {
      v.implied = MaintenanceCategory::emergency;
      v.breaches.push_back({"notice.planned_outage", "$.category",
                            "a planned outage needs 5 business days' notice; it was " + given});
    }
  } else if (window.category == MaintenanceCategory::planned_non_disruptive &&
             !provider.gives_notice(announced, window.start, kNoticeBusinessDays)) {
    v.implied = MaintenanceCategory::expedited_non_disruptive;
    v.breaches.push_back(
        {"notice.planned_non_disruptive", "$.category",
         "a planned non-disruptive change needs 5 business days' notice; it was " + given});
  }
  if (window.category == MaintenanceCategory::emergency) return v;
  const Interval span{window.start, window.end};
  if (environment == Environment::production) {
    const auto overlap = provider.business_hours(span);
    if (!overlap.empty()) {
      v.breaches.push_back({"hours.production", "$.start",
                            "production maintenance is scheduled outside business hours; " +
                                describe_duration(overlap.measure()) + " of this window from " +
                                local_text(overlap.intervals().front().start, provider.zone()) +
                                " fall inside them"});
    }
  } else {
    const BusinessCalendar& cal = service_hours ? *service_hours : provider;
    const auto inside = cal.business_hours(span);
    if (inside.measure() != span.seconds()) {
      v.breaches.push_back({"hours.non_production", "$.start",
                            "QA and development maintenance is scheduled in business hours (" +
                                cal.id() + " calendar); " +
                                describe_duration(span.seconds() - inside.measure()) +
                                " of this window fall outside them"});
    }
  }
  return v;
}

BudgetUse budget_use(const Service& service, const date::time_zone* zone, int fiscal_start_month,
                     const BusinessCalendar& provider, const BusinessCalendar* service_hours,
                     const std::vector<MaintenanceWindow>& windows, Instant at) {
  const FiscalYear fy = fiscal_year_of(at, zone, fiscal_start_month);
  BudgetUse use;
  use.fiscal_year = fy.year;
  use.budget_seconds = service.maintenance_budget_hours_per_fy * 3600;
  IntervalSet planned;
  for (const auto& w : windows) {
    // What the availability engine takes from the budget: a planned outage announced too late
    // is downtime whole, and uses none of it.
    if (w.service != service.id || !pre_approved(w, service.environment, provider)) continue;
    if (w.status != MaintenanceStatus::scheduled && w.status != MaintenanceStatus::complete)
      continue;
    if (w.start < fy.bounds.start || w.start >= fy.bounds.end) continue;
    planned.add({w.start, w.end});
  }
  if (service_hours && !planned.empty()) {
    const Interval all{planned.intervals().front().start, planned.intervals().back().end};
    planned = planned.intersect(service_hours->business_hours(all));
  }
  use.used_seconds = planned.measure();
  return use;
}

}  // namespace slmhub::alerts
