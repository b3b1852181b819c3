#include "engine.hpp"

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace slmhub::billing {
namespace {

using date::days;
using date::months;

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

Date first_day(Month m) { return m / 1; }
Date last_day(Month m) {
  return date::year_month_day_last(m.year(), date::month_day_last(m.month()));
}
Month month_of(Date d) { return d.year() / d.month(); }

std::string service_label(const std::map<std::string, std::string>& names,
                          const std::string& service) {
  const auto it = names.find(service);
  return it == names.end() || it->second.empty() ? service : it->second;
}

std::string service_label(const std::map<std::string, std::string>* names,
                          const std::string& service) {
  return names ? service_label(*names, service) : service;
}

// Active at some moment of [from, to): a missing start or end is open.
bool overlaps(const Subscription& s, const Interval& period) {
  return (!s.start || *s.start < period.end) && (!s.end || *s.end > period.start);
}

// The zone whose calendar months a subscription is billed by: its service's, `fallback` (the
// provider's) for a service without one. A subscription starting at midnight in Berlin is not
// billed for the Chicago month that ends six hours later.
const date::time_zone* service_zone(const std::map<std::string, const date::time_zone*>* zones,
                                    const Subscription& s, const date::time_zone* fallback) {
  if (zones) {
    if (const auto it = zones->find(s.service); it != zones->end() && it->second) return it->second;
  }
  return fallback;
}

Interval service_month(const InvoiceInput& in, const Subscription& s) {
  return month_bounds(in.month, service_zone(in.service_zones, s, in.zone));
}

const RateCard& require_card(const std::vector<RateCard>* cards, Date day,
                             const std::string& what) {
  const RateCard* card = cards ? rate_card_on(*cards, day) : nullptr;
  if (!card) {
    throw PricingError(what + " is dated " + format_date(day) +
                       ", before the first rate card: add a rate card valid from that date");
  }
  return *card;
}

Line subscription_line(const InvoiceInput& in, const Subscription& s) {
  Line line;
  line.kind = "subscription";
  line.description = service_label(in.service_names, s.service) + ", " + format_month(in.month);
  line.quantity_milli = 1000;
  line.unit_code = "MON";
  line.unit_price_cents = s.monthly_charge_cents;
  line.amount_cents = s.monthly_charge_cents;
  line.period_start = first_day(in.month);
  line.period_end = last_day(in.month);
  line.reference = s.service;
  Json sub = {{"service", s.service}, {"monthly_charge_cents", s.monthly_charge_cents}};
  sub["start"] = s.start ? Json(format_instant(*s.start)) : Json();
  sub["end"] = s.end ? Json(format_instant(*s.end)) : Json();
  line.sources = {{"subscription", sub}};
  return line;
}

// The subscription each service is billed by in `month`, by service: one per service; when a
// change ends one subscription and starts another in the month, the later one (latest start;
// an absent start is the earliest). Invoices and estimates both count months this way.
std::map<std::string, const Subscription*> billed_in(
    const std::vector<Subscription>& subscriptions, Month month,
    const std::map<std::string, const date::time_zone*>* zones, const date::time_zone* fallback) {
  std::map<std::string, const Subscription*> by_service;
  for (const auto& s : subscriptions) {
    if (!overlaps(s, month_bounds(month, service_zone(zones, s, fallback)))) continue;
    auto [it, fresh] = by_service.emplace(s.service, &s);
    if (!fresh && s.start && (!it->second->start || *it->second->start <= *s.start))
      it->second = &s;
  }
  return by_service;
}

std::vector<Line> subscription_lines(const InvoiceInput& in) {
  std::vector<Line> out;
  for (const auto& [service, s] :
       billed_in(in.customer.subscriptions, in.month, in.service_zones, in.zone)) {
    out.push_back(subscription_line(in, *s));
  }
  return out;
}

std::vector<Line> time_lines(const InvoiceInput& in) {
  std::vector<const TimeEntry*> entries;
  for (const auto& e : in.time_entries) entries.push_back(&e);
  std::sort(entries.begin(), entries.end(), [](const TimeEntry* a, const TimeEntry* b) {
    return std::tie(a->date, a->id) < std::tie(b->date, b->id);
  });
  std::map<int, std::int64_t> used = in.included_used;
  std::vector<Line> out;
  for (const TimeEntry* e : entries) {
    const RateCard& card = require_card(in.rate_cards, e->date, "time entry " + e->id);
    const int fy = fiscal_year_of(e->date, in.fiscal_year_start_month);
    const std::int64_t rounded = round_up_to_quarter_hour(e->minutes);
    std::int64_t included = 0;
    if (e->kind == WorkKind::included_support) {
      const std::int64_t left = std::max<std::int64_t>(0, in.included_minutes_per_year - used[fy]);
      included = std::min(rounded, left);
      used[fy] += included;
    }
    const std::int64_t billed = rounded - included;
    Line line;
    line.kind = "time";
    line.description = format_date(e->date) + " " + e->description + " (" +
                       std::to_string(e->minutes) + " min recorded, " + std::to_string(rounded) +
                       " billable: " + std::to_string(included) + " included, " +
                       std::to_string(billed) + " billed)";
    line.quantity_milli = billed * 1000 / 60;  // billed is whole quarter hours: exact
    line.unit_code = "HUR";
    line.unit_price_cents = card.hourly_rate_cents;
    line.amount_cents = divide_half_up(billed * card.hourly_rate_cents, 60);
    line.period_start = e->date;
    line.period_end = e->date;
    line.reference = e->ticket;
    line.sources = {{"time_entry",
                     {{"id", e->id},
                      {"date", format_date(e->date)},
                      {"kind", to_string(e->kind)},
                      {"ticket", e->ticket},
                      {"recorded_minutes", e->minutes},
                      {"rounded_minutes", rounded},
                      {"included_minutes", included},
                      {"billed_minutes", billed},
                      {"fiscal_year", fy},
                      {"included_left_after", in.included_minutes_per_year - used[fy]},
                      {"hourly_rate_cents", card.hourly_rate_cents},
                      {"rate_card", card.id}}}};
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<Line> oncall_lines(const InvoiceInput& in) {
  std::vector<const OncallRequest*> requests;
  for (const auto& r : in.oncall) {
    if (r.state != "cancelled") requests.push_back(&r);
  }
  std::sort(requests.begin(), requests.end(), [](const OncallRequest* a, const OncallRequest* b) {
    return std::tie(a->first_day, a->id) < std::tie(b->first_day, b->id);
  });
  std::vector<Line> out;
  for (const OncallRequest* r : requests) {
    const RateCard& card = require_card(in.rate_cards, r->first_day, "on-call request " + r->id);
    const std::int64_t weeks = oncall_weeks(*r);
    Line line;
    line.kind = "oncall";
    line.description = "On-call " + format_date(r->first_day) + " to " + format_date(r->last_day) +
                       " (" + std::to_string(oncall_days(*r)) + " days, " + std::to_string(weeks) +
                       (weeks == 1 ? " week)" : " weeks)");
    line.quantity_milli = weeks * 1000;
    line.unit_code = "WEE";
    line.unit_price_cents = card.oncall_week_cents;
    line.amount_cents = weeks * card.oncall_week_cents;
    line.period_start = r->first_day;
    line.period_end = r->last_day;
    line.reference = r->id;
    line.sources = {{"oncall_request",
                     {{"id", r->id},
                      {"days", oncall_days(*r)},
                      {"weeks", weeks},
                      {"week_cents", card.oncall_week_cents},
                      {"rate_card", card.id}}}};
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<Line> credit_lines(const InvoiceInput& in) {
  std::vector<const CreditItem*> items;
  for (const auto& c : in.credits) items.push_back(&c);
  // Credits, then adjustments (the order of the line kinds), each by approval time then id.
  std::sort(items.begin(), items.end(), [](const CreditItem* a, const CreditItem* b) {
    const bool a_adjusts = a->kind == "adjustment", b_adjusts = b->kind == "adjustment";
    return std::tie(a_adjusts, a->at, a->id) < std::tie(b_adjusts, b->at, b->id);
  });
  std::vector<Line> out;
  for (const CreditItem* c : items) {
    Line line;
    line.kind = c->kind;
    const std::string what = service_label(in.service_names, c->service) + ", " + c->report_month;
    // DOMAIN.md §4: the incident numbers and the maintenance ids that made up the downtime.
    std::string downtime = join(c->incidents, ", ");
    if (!c->maintenance.empty()) {
      downtime +=
          (downtime.empty() ? "" : "; ") + std::string("maintenance ") + join(c->maintenance, ", ");
    }
    line.description =
        c->kind == "adjustment"
            ? "SLA credit " + c->credit + " adjusted by dispute " + c->dispute + " (" + what + ")"
            : "SLA credit " + c->credit + " (" + what +
                  (downtime.empty() ? std::string() : ": " + downtime) + ")";
    line.quantity_milli = 1000;
    line.unit_code = "C62";
    line.amount_cents = -c->amount_cents;
    std::vector<std::string> references = c->incidents;
    references.insert(references.end(), c->maintenance.begin(), c->maintenance.end());
    line.reference = join(references, " ");
    line.sources = {{"credit",
                     {{"id", c->id},
                      {"credit", c->credit},
                      {"kind", c->kind},
                      {"service", c->service},
                      {"report_month", c->report_month},
                      {"incidents", c->incidents},
                      {"maintenance", c->maintenance},
                      {"dispute", c->dispute},
                      {"amount_cents", c->amount_cents},
                      {"at", format_instant(c->at)}}}};
    out.push_back(std::move(line));
  }
  return out;
}

Line money_line(std::string kind, std::string description, std::int64_t amount, Json sources) {
  Line line;
  line.kind = std::move(kind);
  line.description = std::move(description);
  line.quantity_milli = 1000;
  line.unit_code = "C62";
  line.amount_cents = amount;
  line.sources = std::move(sources);
  return line;
}

// Active at any moment after the end of its service's month.
bool runs_past(const InvoiceInput& in) {
  return std::any_of(
      in.customer.subscriptions.begin(), in.customer.subscriptions.end(),
      [&](const Subscription& s) { return !s.end || *s.end > service_month(in, s).end; });
}

std::int64_t sum_amounts(const std::vector<Line>& lines) {
  std::int64_t sum = 0;
  for (const auto& l : lines) sum += l.amount_cents;
  return sum;
}

}  // namespace

const RateCard* rate_card_on(const std::vector<RateCard>& cards, Date day) {
  const RateCard* found = nullptr;
  for (const auto& card : cards) {
    if (card.valid_from > day) break;
    found = &card;
  }
  return found;
}

std::string to_string(WorkKind kind) {
  return kind == WorkKind::billable ? "billable" : "included_support";
}

std::optional<WorkKind> parse_work_kind(std::string_view text) {
  if (text == "included_support") return WorkKind::included_support;
  if (text == "billable") return WorkKind::billable;
  return std::nullopt;
}

std::int64_t round_up_to_quarter_hour(std::int64_t minutes) {
  return (minutes + kQuarterHour - 1) / kQuarterHour * kQuarterHour;
}

std::int64_t oncall_days(const OncallRequest& r) {
  return (date::sys_days(r.last_day) - date::sys_days(r.first_day)).count() + 1;
}

std::int64_t oncall_weeks(const OncallRequest& r) { return (oncall_days(r) + 6) / 7; }

std::optional<FieldError> oncall_rule_broken(const OncallRequest& r) {
  if (r.last_day < r.first_day) {
    return FieldError{"last_day", "the last day (" + format_date(r.last_day) +
                                      ") is before the first (" + format_date(r.first_day) + ")"};
  }
  const Date earliest = date::sys_days(r.requested_on) + days(kOncallLeadDays);
  if (r.first_day < earliest) {
    return FieldError{"first_day", "on-call must be requested at least " +
                                       std::to_string(kOncallLeadDays) +
                                       " days ahead: requested on " + format_date(r.requested_on) +
                                       ", so the first day can be " + format_date(earliest) +
                                       " at the earliest, not " + format_date(r.first_day)};
  }
  if (oncall_days(r) > kOncallMaxDays) {
    return FieldError{"last_day", "on-call periods are at most " + std::to_string(kOncallMaxDays) +
                                      " days; " + format_date(r.first_day) + " to " +
                                      format_date(r.last_day) + " is " +
                                      std::to_string(oncall_days(r)) + " days"};
  }
  return std::nullopt;
}

std::int64_t divide_half_up(std::int64_t n, std::int64_t d) {
  return n >= 0 ? (2 * n + d) / (2 * d) : -((-2 * n + d) / (2 * d));
}

Date fiscal_year_start(int year, int start_month) {
  const int first_year = start_month == 1 ? year : year - 1;
  return date::year{first_year} / date::month{static_cast<unsigned>(start_month)} / 1;
}

int fiscal_year_of(Date day, int start_month) {
  const int y = static_cast<int>(day.year());
  if (start_month == 1) return y;
  return static_cast<unsigned>(day.month()) >= static_cast<unsigned>(start_month) ? y + 1 : y;
}

Invoice compute_invoice(const InvoiceInput& in) {
  Invoice out;
  out.customer = in.customer.id;
  out.month = in.month;
  out.lines = subscription_lines(in);
  out.final_invoice = !out.lines.empty() && !runs_past(in);
  for (auto* more : {&time_lines, &oncall_lines, &credit_lines}) {
    auto lines = (*more)(in);
    out.lines.insert(out.lines.end(), std::make_move_iterator(lines.begin()),
                     std::make_move_iterator(lines.end()));
  }
  if (in.carry_in_cents > 0) {
    out.lines.push_back(money_line(
        "carry_in", "Credit brought forward from " + in.carry_in_from, -in.carry_in_cents,
        {{"invoice", in.carry_in_from}, {"amount_cents", in.carry_in_cents}}));
  }
  for (const auto& l : out.lines) {
    if (l.amount_cents > 0)
      out.charges_cents += l.amount_cents;
    else
      out.credits_cents -= l.amount_cents;
  }
  const std::int64_t sum = sum_amounts(out.lines);
  if (sum < 0) {
    out.carry_out_cents = -sum;
    out.lines.push_back(money_line("carry_forward", "Credit carried forward to the next invoice",
                                   -sum, {{"amount_cents", -sum}}));
  }
  out.total_cents = sum_amounts(out.lines);
  return out;
}

Json compute_estimate(const EstimateInput& in) {
  const Date start = fiscal_year_start(in.fiscal_year, in.fiscal_year_start_month);
  const Month first = month_of(start);
  const Month last = first + months(11);
  const int current_fy = fiscal_year_of(in.made_on, in.fiscal_year_start_month);
  const Month current_first = month_of(fiscal_year_start(current_fy, in.fiscal_year_start_month));
  const RateCard& coming = require_card(in.rate_cards, start, "the fiscal year estimated");
  const RateCard& current = require_card(in.rate_cards, in.made_on, "the estimate");

  auto price = [](const RateCard& card, const Subscription& s) {
    const auto it = card.offerings.find(s.service);
    return it == card.offerings.end() ? s.monthly_charge_cents : it->second;
  };
  std::int64_t total = 0;
  std::int64_t current_total = 0;
  // Each subscription's months as billed: a month two subscriptions of a service share is
  // billed once, by the later one.
  auto billed_months = [&](Month from) {
    std::map<const Subscription*, std::int64_t> n;
    for (Month m = from; m <= from + months(11); m += months(1)) {
      for (const auto& [service, s] :
           billed_in(in.customer.subscriptions, m, &in.service_zones, in.zone)) {
        ++n[s];
      }
    }
    return n;
  };
  const auto coming_months = billed_months(first);
  const auto current_months = billed_months(current_first);
  Json subscriptions = Json::array();
  for (const auto& s : in.customer.subscriptions) {
    const auto months_of = [&s](const std::map<const Subscription*, std::int64_t>& counted) {
      const auto it = counted.find(&s);
      return it == counted.end() ? std::int64_t{0} : it->second;
    };
    const std::int64_t n = months_of(coming_months);
    const std::int64_t now_n = months_of(current_months);
    // The current year at what the customer pays now; the coming one at its list price.
    current_total += now_n * s.monthly_charge_cents;
    if (n == 0) continue;
    const std::int64_t monthly = price(coming, s);
    subscriptions.push_back({{"service", s.service},
                             {"name", service_label(in.service_names, s.service)},
                             {"months", n},
                             {"monthly_charge_cents", monthly},
                             {"amount_cents", n * monthly}});
    total += n * monthly;
  }

  // The twelve whole months before the month the estimate is made in.
  const Month window_last = month_of(in.made_on) - months(1);
  const Date from = first_day(window_last - months(11));
  const Date to = last_day(window_last);
  std::int64_t entries = 0, included_kind = 0, billable_kind = 0;
  for (const auto& e : in.time_entries) {
    if (e.date < from || e.date > to) continue;
    ++entries;
    (e.kind == WorkKind::included_support ? included_kind : billable_kind) +=
        round_up_to_quarter_hour(e.minutes);
  }
  const std::int64_t included = std::min(included_kind, in.included_minutes_per_year);
  const std::int64_t billed = billable_kind + included_kind - included;
  const std::int64_t time_amount = divide_half_up(billed * coming.hourly_rate_cents, 60);
  total += time_amount;
  current_total += divide_half_up(billed * current.hourly_rate_cents, 60);

  std::int64_t requests = 0, weeks = 0;
  for (const auto& r : in.oncall) {
    if (r.state == "cancelled" || r.first_day < from || r.first_day > to) continue;
    ++requests;
    weeks += oncall_weeks(r);
  }
  total += weeks * coming.oncall_week_cents;
  current_total += weeks * current.oncall_week_cents;

  const std::int64_t change = total - current_total;
  Json out = {{"customer", in.customer.id},
              {"billing_code", in.customer.billing_code},
              {"fiscal_year", in.fiscal_year},
              {"period", {{"start", format_date(start)}, {"end", format_date(last_day(last))}}},
              {"made_on", format_date(in.made_on)},
              {"rate_card", coming.id},
              {"subscriptions", subscriptions},
              {"time",
               {{"window", {{"start", format_date(from)}, {"end", format_date(to)}}},
                {"entries", entries},
                {"rounded_minutes", included_kind + billable_kind},
                {"included_minutes", included},
                {"billed_minutes", billed},
                {"hourly_rate_cents", coming.hourly_rate_cents},
                {"amount_cents", time_amount}}},
              {"oncall",
               {{"requests", requests},
                {"weeks", weeks},
                {"week_cents", coming.oncall_week_cents},
                {"amount_cents", weeks * coming.oncall_week_cents}}},
              {"total_cents", total},
              {"current_year_cents", current_total},
              {"change_cents", change}};
  // Basis points of the current year's cost, truncated toward zero; none when it was nothing.
  out["change_basis_points"] = current_total > 0 ? Json(change * 10000 / current_total) : Json();
  const std::int64_t magnitude = change < 0 ? -change : change;
  out["significant"] = current_total > 0
                           ? magnitude * 10000 >= in.significant_basis_points * current_total
                           : total > 0;
  return out;
}

}  // namespace slmhub::billing
