// The availability engine (DOMAIN.md §3-4). Every set of seconds is an IntervalSet, so unions
// never count a second twice and "X always wins" is a subtraction; money stays a rational
// num/den until the single half-up rounding at the end.
#include "engine.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>

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

bool pre_approved(const MaintenanceWindow& w, Environment env, const BusinessCalendar& provider) {
  if (!w.announced_at) return false;
  if (env == Environment::production) {
    return w.start - *w.announced_at >= std::chrono::hours(14 * 24);
  }
  const auto announced = local_date(*w.announced_at, provider.zone());
  const auto starts = local_date(w.start, provider.zone());
  return starts >= provider.add_business_days(announced, 5);
}

// One maintenance window's effect on its service, before cutting to a period.
struct WindowEffect {
  const MaintenanceWindow* window;
  // A copy of the window's span: every month reads it for every window of every service,
  // and following `window` into the dataset for it was the engine's hottest cache miss.
  Interval span;
  int fiscal_year;
  IntervalSet excluded;  // the budgeted part of a pre-approved planned outage
  IntervalSet downtime;  // the rest, in service hours, minus every window's exclusion
  int64_t excluded_seconds = 0;
};

// Excluded maintenance and maintenance downtime of one service for all time.
struct Maintenance {
  IntervalSet excluded;
  std::vector<WindowEffect> windows;  // chronological (ties by id)
  // Compact views of `windows` for the monthly pass, which must not walk every window of
  // the year: starts (sorted), fiscal years (non-decreasing with the starts), excluded
  // seconds summed up to each window, and the longest window.
  std::vector<Instant> starts;
  std::vector<int> fiscal_years;
  std::vector<int64_t> excluded_before;  // size windows + 1
  std::chrono::seconds longest{0};
};

// Takes pre-approved planned outages in chronological order (ties by id), each consuming the
// budget of the fiscal year it starts in. Windows before the month are walked too: they used
// budget the month's windows can no longer use.
Maintenance classify_maintenance(const Dataset& dataset, const Service& service,
                                 std::vector<const MaintenanceWindow*> windows,
                                 const ServiceHours& hours, const date::time_zone* zone,
                                 const BusinessCalendar& provider) {
  std::sort(windows.begin(), windows.end(), [](const auto* a, const auto* b) {
    return std::tie(a->start, a->id) < std::tie(b->start, b->id);
  });

  const int64_t budget = service.maintenance_budget_hours_per_fy * 3600;
  std::map<int, int64_t> used;  // by fiscal year
  Maintenance out;
  for (const auto* w : windows) {
    const int fy = fiscal_year_of(w->start, zone, dataset.fiscal_year_start_month).year;
    const IntervalSet in_hours = hours.within({w->start, w->end});
    if (w->category == MaintenanceCategory::planned_outage &&
        pre_approved(*w, service.environment, provider)) {
      const IntervalSet fresh = in_hours.subtract(out.excluded);
      IntervalSet take = fresh.earliest(budget - used[fy]);
      used[fy] += take.measure();
      out.excluded = out.excluded.unite(take);
      IntervalSet rest = fresh.subtract(take);
      out.windows.push_back({w, {w->start, w->end}, fy, std::move(take), std::move(rest)});
    } else {
      out.windows.push_back({w, {w->start, w->end}, fy, {}, in_hours});
    }
  }
  // Later windows can exclude seconds an earlier one marked as downtime; X always wins.
  out.excluded_before.push_back(0);
  for (auto& effect : out.windows) {
    effect.downtime = effect.downtime.subtract(out.excluded);
    effect.excluded_seconds = effect.excluded.measure();
    out.starts.push_back(effect.span.start);
    out.fiscal_years.push_back(effect.fiscal_year);
    out.excluded_before.push_back(out.excluded_before.back() + effect.excluded_seconds);
    out.longest = std::max(out.longest, effect.span.end - effect.span.start);
  }
  return out;
}

// A subscription's term as the engine needs it, kept contiguously per service: checking every
// subscriber of every service in every month was a pointer chase into the customers.
struct Term {
  Instant start;      // Instant::min() when open-ended
  Instant end;        // Instant::max() when open-ended
  Instant start_key;  // the start, absent counting as the epoch: orders "started last"
  int64_t monthly_charge_cents;
};

Term term_of(const Subscription& s) {
  return {s.start.value_or(Instant::min()), s.end.value_or(Instant::max()),
          s.start.value_or(Instant{}), s.monthly_charge_cents};
}

// One customer's subscriptions to one service: terms [first, last) of the service's list.
struct Subscriber {
  const Customer* customer;
  std::size_t first;
  std::size_t last;
};

// The term whose charge is credited: with several active in the period, the one that
// started last (the charge in force at the period's end).
const Term* active_term(const std::vector<Term>& terms, const Subscriber& s, Interval period) {
  if (period.empty()) return nullptr;
  const Term* best = nullptr;
  for (std::size_t k = s.first; k < s.last; ++k) {
    const Term& t = terms[k];
    if (t.start >= period.end || t.end <= period.start) continue;
    if (!best || t.start_key >= best->start_key) best = &t;
  }
  return best;
}

// An interruption's part of the month that counts (∩ H − X, non-empty), as the range
// [first, last) of a flat list of disjoint intervals shared by the service's interruptions,
// so a month with thousands of interruptions does not allocate a set for each.
struct Contribution {
  const Interruption* interruption;
  std::size_t first;
  std::size_t last;
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

Interval clip(Interval span, Interval period) {
  return {std::clamp(span.start, period.start, period.end),
          std::clamp(span.end, period.start, period.end)};
}

// Everything about one service that does not depend on the month.
struct ServiceIndex {
  const Service* service;
  const date::time_zone* zone;
  ServiceHours hours;
  CreditPolicy policy;
  Maintenance maintenance;
  // Outages (type outage only) with their ends at hand, closed ones sorted by start, so a
  // month is a binary search and a contiguous walk rather than a pointer chase through
  // every outage of the year.
  struct OutageRef {
    Instant start;
    Instant end;  // open outages: resolved per report
    const Interruption* interruption;
  };
  std::vector<OutageRef> closed;
  std::vector<OutageRef> open;
  std::chrono::seconds longest{0};      // of the closed ones
  std::vector<Subscriber> subscribers;  // by customer id
  std::vector<Term> terms;
};

}  // namespace

BusinessCalendar provider_calendar(const Dataset& dataset) {
  if (dataset.provider_calendar) {
    if (const CalendarDef* def = find_calendar(dataset, *dataset.provider_calendar)) {
      return def->to_calendar();
    }
  }
  return BusinessCalendar::weekdays(find_zone(dataset.timezone));
}

const char* to_string(TimelineEntry::Kind kind) {
  switch (kind) {
    case TimelineEntry::Kind::interruption:
      return "interruption";
    case TimelineEntry::Kind::maintenance_downtime:
      return "maintenance_downtime";
    case TimelineEntry::Kind::excluded_maintenance:
      return "excluded_maintenance";
  }
  return "interruption";
}

struct Engine::Index {
  const Dataset* dataset;
  std::vector<ServiceIndex> services;  // sorted by service id
};

Engine::Engine(const Dataset& dataset) : index_(std::make_unique<Index>()) {
  index_->dataset = &dataset;
  std::vector<const Service*> services;
  for (const auto& s : dataset.services) services.push_back(&s);
  std::sort(services.begin(), services.end(),
            [](const Service* a, const Service* b) { return a->id < b->id; });
  std::unordered_map<std::string_view, std::size_t> slot;
  slot.reserve(services.size());
  for (std::size_t i = 0; i < services.size(); ++i) slot.emplace(services[i]->id, i);

  std::vector<std::vector<const MaintenanceWindow*>> windows(services.size());
  for (const auto& w : dataset.maintenance) {
    if (w.status == MaintenanceStatus::skipped || w.status == MaintenanceStatus::cancelled) {
      continue;
    }
    if (w.category == MaintenanceCategory::planned_non_disruptive ||
        w.category == MaintenanceCategory::expedited_non_disruptive) {
      continue;
    }
    if (auto it = slot.find(w.service); it != slot.end()) windows[it->second].push_back(&w);
  }

  const BusinessCalendar provider = provider_calendar(dataset);
  index_->services.reserve(services.size());
  for (std::size_t i = 0; i < services.size(); ++i) {
    const Service& service = *services[i];
    const date::time_zone* zone = find_zone(service.timezone.value_or(dataset.timezone));
    ServiceHours hours(dataset, service);
    Maintenance maintenance =
        classify_maintenance(dataset, service, std::move(windows[i]), hours, zone, provider);
    index_->services.push_back(
        {&service,
         zone,
         std::move(hours),
         service.credit_policy.value_or(dataset.credit_policy.value_or(CreditPolicy{})),
         std::move(maintenance),
         {},
         {},
         {},
         {},
         {}});
  }
  // Two passes, so each service's list is allocated once at its final size.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> owner(dataset.interruptions.size(), kNone);
  std::vector<std::size_t> count(services.size(), 0);
  for (std::size_t n = 0; n < dataset.interruptions.size(); ++n) {
    const Interruption& i = dataset.interruptions[n];
    if (i.type != InterruptionType::outage) continue;
    if (auto it = slot.find(i.service); it != slot.end()) {
      owner[n] = it->second;
      ++count[it->second];
    }
  }
  for (std::size_t k = 0; k < services.size(); ++k) index_->services[k].closed.reserve(count[k]);
  for (std::size_t n = 0; n < dataset.interruptions.size(); ++n) {
    const Interruption& i = dataset.interruptions[n];
    if (owner[n] != kNone) {
      auto& service = index_->services[owner[n]];
      if (i.end) {
        service.closed.push_back({i.start, *i.end, &i});
        service.longest = std::max(service.longest, *i.end - i.start);
      } else {
        service.open.push_back({i.start, i.start, &i});
      }
    }
  }
  for (auto& service : index_->services) {
    std::sort(service.closed.begin(), service.closed.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
  }
  std::vector<const Customer*> customers;
  for (const auto& c : dataset.customers) customers.push_back(&c);
  std::sort(customers.begin(), customers.end(),
            [](const Customer* a, const Customer* b) { return a->id < b->id; });
  for (const Customer* c : customers) {
    for (const auto& sub : c->subscriptions) {
      auto it = slot.find(sub.service);
      if (it == slot.end()) continue;
      auto& service = index_->services[it->second];
      if (service.subscribers.empty() || service.subscribers.back().customer != c) {
        service.subscribers.push_back({c, service.terms.size(), service.terms.size()});
      }
      service.terms.push_back(term_of(sub));
      service.subscribers.back().last = service.terms.size();
    }
  }
}

Engine::~Engine() = default;

namespace {

// The seconds of `span` that count: ∩ H − X, appended to `out` as disjoint intervals. The
// common case (H one interval, as for 24x7, and no exclusion overlapping) is a clip.
void counted_part(Interval span, const IntervalSet& h, const IntervalSet& x,
                  std::vector<Interval>& out) {
  const auto& hours = h.intervals();
  const bool x_clear =
      std::none_of(x.intervals().begin(), x.intervals().end(),
                   [&](const Interval& e) { return e.start < span.end && span.start < e.end; });
  if (hours.size() == 1 && x_clear) {
    const Interval part{std::max(span.start, hours[0].start), std::min(span.end, hours[0].end)};
    if (!part.empty()) out.push_back(part);
    return;
  }
  const IntervalSet part = IntervalSet{span}.intersect(h).subtract(x);
  out.insert(out.end(), part.intervals().begin(), part.intervals().end());
}

// Copies of the strings pointed to.
std::vector<std::string> strings(const std::vector<const std::string*>& items) {
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const auto* item : items) out.push_back(*item);
  return out;
}

// Sorted, duplicate-free copies of the strings pointed to.
std::vector<std::string> sorted_unique(std::vector<const std::string*> items) {
  std::sort(items.begin(), items.end(), [](const auto* a, const auto* b) { return *a < *b; });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const auto* a, const auto* b) { return *a == *b; }),
              items.end());
  return strings(items);
}

// The month's bounds and fiscal year per zone, computed once per report: services share
// a handful of zones, and a zone lookup costs more than a service's whole computation.
struct MonthInZone {
  Interval period;
  int fiscal_year;
};

void compute_service(const ServiceIndex& s, const MonthInZone& m, std::optional<Instant> as_of,
                     Detail detail, AvailabilityReport& report) {
  Interval period = m.period;
  if (as_of) period.end = std::clamp(*as_of, period.start, period.end);
  const bool full = detail == Detail::full;

  const IntervalSet h = s.hours.within(period);
  const IntervalSet x = s.maintenance.excluded.intersect(h);

  ServiceFigures f;
  f.service = s.service->id;
  f.target_thousandths = s.service->target_thousandths;
  f.period = period;
  f.maintenance_budget_seconds = s.service->maintenance_budget_hours_per_fy * 3600;

  std::vector<const Subscriber*> subscribers;
  std::vector<const std::string*> subscriber_ids;
  for (const auto& sub : s.subscribers) {
    if (active_term(s.terms, sub, period)) {
      subscribers.push_back(&sub);
      subscriber_ids.push_back(&sub.customer->id);
    }
  }

  std::vector<Interval> maint_down;
  const Maintenance& mt = s.maintenance;
  // Windows that start before the period's end; of those, the fiscal year's have used budget.
  const auto until = static_cast<std::size_t>(
      std::lower_bound(mt.starts.begin(), mt.starts.end(), period.end) - mt.starts.begin());
  const auto [fy_first, fy_last] =
      std::equal_range(mt.fiscal_years.begin(), mt.fiscal_years.end(), m.fiscal_year);
  const auto fy_from = static_cast<std::size_t>(fy_first - mt.fiscal_years.begin());
  const auto fy_to = std::min(until, static_cast<std::size_t>(fy_last - mt.fiscal_years.begin()));
  if (fy_to > fy_from) {
    f.maintenance_budget_used_seconds = mt.excluded_before[fy_to] - mt.excluded_before[fy_from];
  }
  const auto from = static_cast<std::size_t>(
      std::lower_bound(mt.starts.begin(), mt.starts.begin() + static_cast<std::ptrdiff_t>(until),
                       period.start - mt.longest) -
      mt.starts.begin());
  for (std::size_t k = from; k < until; ++k) {
    const WindowEffect& effect = mt.windows[k];
    if (effect.span.end <= period.start) continue;
    const MaintenanceWindow& w = *effect.window;
    const Interval span = clip(effect.span, period);
    if (full) {
      if (const int64_t excluded = effect.excluded.intersect(h).measure(); excluded > 0) {
        f.timeline.push_back({w.id, TimelineEntry::Kind::excluded_maintenance, span, excluded,
                              strings(subscriber_ids)});
      }
    }
    if (effect.downtime.empty()) continue;
    const IntervalSet part = effect.downtime.intersect(h).subtract(x);
    if (part.empty()) continue;
    maint_down.insert(maint_down.end(), part.intervals().begin(), part.intervals().end());
    f.maintenance_downtime.push_back(w.id);
    if (full) {
      f.timeline.push_back({w.id, TimelineEntry::Kind::maintenance_downtime, span, part.measure(),
                            strings(subscriber_ids)});
    }
  }
  std::sort(f.maintenance_downtime.begin(), f.maintenance_downtime.end());

  std::vector<Contribution> contributions;
  std::vector<Interval> pieces;
  bool all_subscribers = !maint_down.empty();
  std::vector<const std::string*> named;
  std::vector<const std::string*> ids;
  auto month_outage = [&](const ServiceIndex::OutageRef& o) {
    const Interruption* i = o.interruption;
    const Instant end = i->end ? o.end : (as_of ? *as_of : period.end);
    if (i->start >= period.end || end <= period.start) return;
    const std::size_t first = pieces.size();
    counted_part({i->start, end}, h, x, pieces);
    if (pieces.size() == first) return;
    contributions.push_back({i, first, pieces.size()});
    ids.push_back(&i->id);
    if (i->customers.empty()) {
      all_subscribers = true;
    } else {
      for (const auto& c : i->customers) named.push_back(&c);
    }
    if (full) {
      int64_t seconds = 0;
      for (std::size_t k = first; k < pieces.size(); ++k) seconds += pieces[k].seconds();
      std::vector<std::string> customers =
          i->customers.empty() ? strings(subscriber_ids) : i->customers;
      std::sort(customers.begin(), customers.end());
      f.timeline.push_back({i->id, TimelineEntry::Kind::interruption, clip({i->start, end}, period),
                            seconds, std::move(customers)});
    }
  };
  // Closed outages that can reach into the period start at most `longest` before it.
  auto it =
      std::lower_bound(s.closed.begin(), s.closed.end(), period.start - s.longest,
                       [](const ServiceIndex::OutageRef& o, Instant t) { return o.start < t; });
  for (; it != s.closed.end() && it->start < period.end; ++it) {
    if (it->end > period.start) month_outage(*it);
  }
  for (const auto& o : s.open) month_outage(o);
  if (full) {
    std::sort(f.timeline.begin(), f.timeline.end(), [](const auto& a, const auto& b) {
      return std::tie(a.span.start, a.id, a.kind) < std::tie(b.span.start, b.id, b.kind);
    });
  }

  std::vector<Interval> all = maint_down;
  all.insert(all.end(), pieces.begin(), pieces.end());
  const IntervalSet down(std::move(all));

  f.excluded_maintenance_seconds = x.measure();
  f.scheduled_seconds = h.measure() - f.excluded_maintenance_seconds;
  f.downtime_seconds = down.measure();
  f.allowed_downtime_seconds =
      f.scheduled_seconds * (100000 - s.service->target_thousandths) / 100000;
  f.excess_downtime_seconds = std::max<int64_t>(0, f.downtime_seconds - f.allowed_downtime_seconds);
  f.met = f.downtime_seconds <= f.allowed_downtime_seconds;
  if (f.scheduled_seconds > 0) {
    f.availability_ten_thousandths =
        round_half_up(static_cast<__int128>(f.scheduled_seconds - f.downtime_seconds) * 1000000,
                      f.scheduled_seconds);
  }

  if (all_subscribers) {
    named.insert(named.end(), subscriber_ids.begin(), subscriber_ids.end());
  }
  f.interruptions = sorted_unique(std::move(ids));
  f.customers_impacted = sorted_unique(std::move(named));

  // A customer's downtime is part of the service's, so a service that met its SLA owes no
  // credit to anyone; only missed services need the per-customer sets.
  if (!f.met) {
    // Subscribers are in customer order, so the rows come out sorted by customer.
    for (const Subscriber* subscriber : subscribers) {
      const Customer& c = *subscriber->customer;
      if (!std::binary_search(f.customers_impacted.begin(), f.customers_impacted.end(), c.id)) {
        continue;
      }
      std::vector<Interval> own_pieces = maint_down;
      std::vector<const std::string*> own;
      for (const auto& k : contributions) {
        const auto& names = k.interruption->customers;
        if (!names.empty() && std::find(names.begin(), names.end(), c.id) == names.end()) continue;
        own_pieces.insert(own_pieces.end(), pieces.begin() + static_cast<std::ptrdiff_t>(k.first),
                          pieces.begin() + static_cast<std::ptrdiff_t>(k.last));
        own.push_back(&k.interruption->id);
      }
      CreditRow row;
      row.downtime_seconds = IntervalSet(std::move(own_pieces)).measure();
      row.excess_downtime_seconds = row.downtime_seconds - f.allowed_downtime_seconds;
      if (row.excess_downtime_seconds <= 0) continue;
      const Term* sub = active_term(s.terms, *subscriber, period);
      row.customer = c.id;
      row.service = s.service->id;
      row.monthly_charge_cents = sub->monthly_charge_cents;
      row.credit_cents =
          credit_cents(s.policy, sub->monthly_charge_cents, row.excess_downtime_seconds,
                       row.downtime_seconds, f.scheduled_seconds);
      row.interruptions = sorted_unique(std::move(own));
      row.maintenance_downtime = f.maintenance_downtime;
      report.credits.push_back(std::move(row));
    }
  }
  report.services.push_back(std::move(f));
}

}  // namespace

AvailabilityReport Engine::report(date::year_month month, std::optional<Instant> as_of,
                                  Detail detail) const {
  AvailabilityReport report;
  report.month = month;
  std::unordered_map<const date::time_zone*, MonthInZone> zones;
  for (const auto& s : index_->services) {
    auto it = zones.find(s.zone);
    if (it == zones.end()) {
      const Interval period = month_bounds(month, s.zone);
      const int fy =
          fiscal_year_of(period.start, s.zone, index_->dataset->fiscal_year_start_month).year;
      it = zones.emplace(s.zone, MonthInZone{period, fy}).first;
    }
    compute_service(s, it->second, as_of, detail, report);
  }
  return report;
}

AvailabilityReport compute(const Dataset& dataset, date::year_month month,
                           std::optional<Instant> as_of) {
  return Engine(dataset).report(month, as_of);
}

}  // namespace slmhub::availability
