// The availability engine (DOMAIN.md §3-4). Every set of seconds is an IntervalSet, so unions
// never count a second twice and "X always wins" is a subtraction; money stays a rational
// num/den until the single half-up rounding at the end.
#include "engine.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <tuple>

namespace slmhub::availability {

int64_t round_half_up(__int128 num, __int128 den) {
  return static_cast<int64_t>((2 * num + den) / (2 * den));
}

namespace {

const CalendarDef* find_calendar(const Dataset& dataset, const std::string& id) {
  for (const auto& c : dataset.calendars) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

// The service's hours as a function of a span: all of it for 24x7, the calendar's business
// hours otherwise (in the calendar's own zone).
class ServiceHours {
 public:
  ServiceHours(const Dataset& dataset, const Service& service) {
    if (service.hours == kHours24x7) return;
    const CalendarDef* def = find_calendar(dataset, service.hours);
    if (!def) {
      throw ValidationError("service '" + service.id + "'.hours",
                            "names calendar '" + service.hours + "', which does not exist");
    }
    calendar_.emplace(def->to_calendar());
  }
  IntervalSet within(Interval span) const {
    if (span.empty()) return {};
    if (!calendar_) return IntervalSet{span};
    return calendar_->business_hours(span);
  }

 private:
  std::optional<BusinessCalendar> calendar_;
};

// Business days for lead times come from the provider calendar; without one, Monday to
// Friday with no holidays in the dataset's zone (DOMAIN.md §2).
BusinessCalendar provider_calendar(const Dataset& dataset) {
  if (dataset.provider_calendar) {
    if (const CalendarDef* def = find_calendar(dataset, *dataset.provider_calendar)) {
      return def->to_calendar();
    }
  }
  return BusinessCalendar::weekdays(find_zone(dataset.timezone));
}

bool pre_approved(const MaintenanceWindow& w, Environment env, const BusinessCalendar& provider) {
  if (!w.announced_at) return false;
  if (env == Environment::production) {
    return w.start - *w.announced_at >= std::chrono::hours(14 * 24);
  }
  const auto announced = local_date(*w.announced_at, provider.zone());
  const auto starts = local_date(w.start, provider.zone());
  return starts >= provider.add_business_days(announced, 5);
}

// Excluded maintenance and maintenance downtime of one service, before cutting to a period.
struct Maintenance {
  IntervalSet excluded;
  std::vector<std::pair<std::string, IntervalSet>> downtime;  // per window id
};

// Takes pre-approved planned outages in chronological order (ties by id), each consuming the
// budget of the fiscal year it starts in. Windows before the month are walked too: they used
// budget the month's windows can no longer use.
Maintenance classify_maintenance(const Dataset& dataset, const Service& service,
                                 const ServiceHours& hours, const date::time_zone* zone) {
  const BusinessCalendar provider = provider_calendar(dataset);
  std::vector<const MaintenanceWindow*> windows;
  for (const auto& w : dataset.maintenance) {
    if (w.service != service.id) continue;
    if (w.status == MaintenanceStatus::skipped || w.status == MaintenanceStatus::cancelled) {
      continue;
    }
    if (w.category == MaintenanceCategory::planned_non_disruptive ||
        w.category == MaintenanceCategory::expedited_non_disruptive) {
      continue;
    }
    windows.push_back(&w);
  }
  std::sort(windows.begin(), windows.end(), [](const auto* a, const auto* b) {
    return std::tie(a->start, a->id) < std::tie(b->start, b->id);
  });

  const int64_t budget = service.maintenance_budget_hours_per_fy * 3600;
  std::map<int, int64_t> used;  // by fiscal year
  Maintenance out;
  std::vector<std::pair<std::string, IntervalSet>> down_candidates;
  for (const auto* w : windows) {
    const IntervalSet in_hours = hours.within({w->start, w->end});
    if (w->category == MaintenanceCategory::planned_outage &&
        pre_approved(*w, service.environment, provider)) {
      const int fy = fiscal_year_of(w->start, zone, dataset.fiscal_year_start_month).year;
      const IntervalSet fresh = in_hours.subtract(out.excluded);
      const IntervalSet take = fresh.earliest(budget - used[fy]);
      used[fy] += take.measure();
      out.excluded = out.excluded.unite(take);
      down_candidates.emplace_back(w->id, fresh.subtract(take));
    } else {
      down_candidates.emplace_back(w->id, in_hours);
    }
  }
  // Later windows can exclude seconds an earlier one marked as downtime; X always wins.
  for (auto& [id, set] : down_candidates) {
    IntervalSet rest = set.subtract(out.excluded);
    if (!rest.empty()) out.downtime.emplace_back(id, std::move(rest));
  }
  return out;
}

bool active_during(const Subscription& s, Interval period) {
  if (period.empty()) return false;
  if (s.start && *s.start >= period.end) return false;
  if (s.end && *s.end <= period.start) return false;
  return true;
}

// The subscription whose charge is credited: with several active in the period, the one that
// started last (the charge in force at the period's end).
const Subscription* active_subscription(const Customer& c, const std::string& service,
                                        Interval period) {
  const Subscription* best = nullptr;
  for (const auto& s : c.subscriptions) {
    if (s.service != service || !active_during(s, period)) continue;
    if (!best || s.start.value_or(Instant{}) >= best->start.value_or(Instant{})) best = &s;
  }
  return best;
}

struct Contribution {
  const Interruption* interruption;
  IntervalSet seconds;  // ∩ H − X, non-empty
};

int64_t credit_cents(const CreditPolicy& policy, int64_t charge, int64_t excess,
                     int64_t customer_downtime, int64_t scheduled) {
  __int128 num = 0;
  __int128 den = 1;
  if (policy.type == CreditPolicyType::proportional) {
    num = static_cast<__int128>(charge) * excess;
    den = scheduled;
  } else {
    // Exact availability a = (scheduled − D_c) / scheduled; "below p %" is
    // (scheduled − D_c) × 100000 < p_thousandths × scheduled.
    const CreditTier* tier = nullptr;
    for (const auto& t : policy.tiers) {
      const bool below = static_cast<__int128>(scheduled - customer_downtime) * 100000 <
                         static_cast<__int128>(t.below_thousandths) * scheduled;
      if (below && (!tier || t.below_thousandths < tier->below_thousandths)) tier = &t;
    }
    if (tier) {
      num = static_cast<__int128>(charge) * tier->credit_thousandths;
      den = 100000;
    }
  }
  const __int128 cap_num = static_cast<__int128>(charge) * policy.cap_thousandths;
  const __int128 cap_den = 100000;
  if (num * cap_den > cap_num * den) {
    num = cap_num;
    den = cap_den;
  }
  return round_half_up(num, den);
}

std::vector<std::string> sorted(std::set<std::string> s) { return {s.begin(), s.end()}; }

void compute_service(const Dataset& dataset, const Service& service, date::year_month month,
                     std::optional<Instant> as_of, AvailabilityReport& report) {
  const date::time_zone* zone = find_zone(service.timezone.value_or(dataset.timezone));
  Interval period = month_bounds(month, zone);
  if (as_of) period.end = std::clamp(*as_of, period.start, period.end);

  const ServiceHours hours(dataset, service);
  const IntervalSet h = hours.within(period);
  const Maintenance maintenance = classify_maintenance(dataset, service, hours, zone);
  const IntervalSet x = maintenance.excluded.intersect(h);

  ServiceFigures f;
  f.service = service.id;
  f.target_thousandths = service.target_thousandths;

  IntervalSet maint_down;
  for (const auto& [id, set] : maintenance.downtime) {
    const IntervalSet part = set.intersect(h).subtract(x);
    if (part.empty()) continue;
    maint_down = maint_down.unite(part);
    f.maintenance_downtime.push_back(id);
  }
  std::sort(f.maintenance_downtime.begin(), f.maintenance_downtime.end());

  std::vector<Contribution> contributions;
  IntervalSet down = maint_down;
  for (const auto& i : dataset.interruptions) {
    if (i.service != service.id || i.type != InterruptionType::outage) continue;
    const Instant end = i.end ? *i.end : (as_of ? *as_of : period.end);
    IntervalSet part = IntervalSet{Interval{i.start, end}}.intersect(h).subtract(x);
    if (part.empty()) continue;
    down = down.unite(part);
    contributions.push_back({&i, std::move(part)});
  }

  f.excluded_maintenance_seconds = x.measure();
  f.scheduled_seconds = h.measure() - f.excluded_maintenance_seconds;
  f.downtime_seconds = down.measure();
  f.allowed_downtime_seconds = f.scheduled_seconds * (100000 - service.target_thousandths) / 100000;
  f.excess_downtime_seconds = std::max<int64_t>(0, f.downtime_seconds - f.allowed_downtime_seconds);
  f.met = f.downtime_seconds <= f.allowed_downtime_seconds;
  if (f.scheduled_seconds > 0) {
    f.availability_ten_thousandths =
        round_half_up(static_cast<__int128>(f.scheduled_seconds - f.downtime_seconds) * 1000000,
                      f.scheduled_seconds);
  }

  std::set<std::string> subscribers;
  for (const auto& c : dataset.customers) {
    if (active_subscription(c, service.id, period)) subscribers.insert(c.id);
  }
  std::set<std::string> impacted;
  std::set<std::string> ids;
  for (const auto& c : contributions) {
    ids.insert(c.interruption->id);
    if (c.interruption->customers.empty()) {
      impacted.insert(subscribers.begin(), subscribers.end());
    } else {
      impacted.insert(c.interruption->customers.begin(), c.interruption->customers.end());
    }
  }
  if (!maint_down.empty()) impacted.insert(subscribers.begin(), subscribers.end());
  f.interruptions = sorted(std::move(ids));
  f.customers_impacted = sorted(impacted);

  const CreditPolicy policy =
      service.credit_policy.value_or(dataset.credit_policy.value_or(CreditPolicy{}));
  std::vector<CreditRow> rows;
  for (const auto& c : dataset.customers) {
    if (!impacted.contains(c.id)) continue;
    const Subscription* sub = active_subscription(c, service.id, period);
    if (!sub) continue;
    IntervalSet dc = maint_down;
    std::set<std::string> own;
    for (const auto& k : contributions) {
      const auto& named = k.interruption->customers;
      if (!named.empty() && std::find(named.begin(), named.end(), c.id) == named.end()) continue;
      dc = dc.unite(k.seconds);
      own.insert(k.interruption->id);
    }
    CreditRow row;
    row.downtime_seconds = dc.measure();
    row.excess_downtime_seconds = row.downtime_seconds - f.allowed_downtime_seconds;
    if (row.excess_downtime_seconds <= 0) continue;
    row.customer = c.id;
    row.service = service.id;
    row.monthly_charge_cents = sub->monthly_charge_cents;
    row.credit_cents = credit_cents(policy, sub->monthly_charge_cents, row.excess_downtime_seconds,
                                    row.downtime_seconds, f.scheduled_seconds);
    row.interruptions = sorted(std::move(own));
    row.maintenance_downtime = f.maintenance_downtime;
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(),
            [](const CreditRow& a, const CreditRow& b) { return a.customer < b.customer; });
  report.services.push_back(std::move(f));
  for (auto& r : rows) report.credits.push_back(std::move(r));
}

}  // namespace

AvailabilityReport compute(const Dataset& dataset, date::year_month month,
                           std::optional<Instant> as_of) {
  std::vector<const Service*> services;
  for (const auto& s : dataset.services) services.push_back(&s);
  std::sort(services.begin(), services.end(),
            [](const Service* a, const Service* b) { return a->id < b->id; });
  AvailabilityReport report;
  report.month = month;
  for (const Service* s : services) compute_service(dataset, *s, month, as_of, report);
  return report;
}

}  // namespace slmhub::availability
