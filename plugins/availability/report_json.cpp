// Report JSON writer (DESIGN.md §5.4). Keys print in nlohmann::json's sorted order; the
// design fixes names and meanings, not key order.
#include "report_json.hpp"

#include <string>
#include <string_view>
#include <unordered_map>

namespace slmhub::availability {

Json ten_thousandths_to_json(int64_t value) { return decimal_to_json(value, 4); }

namespace {

Json ids_json(const IdList& ids) {
  Json out = Json::array();
  for (const std::string_view id : ids) out.push_back(id);
  return out;
}

}  // namespace

Json report_to_json(const AvailabilityReport& report) {
  Json services = Json::array();
  for (const auto& f : report.services) {
    Json s = Json::object();
    s["service"] = f.service;
    s["target_percent"] = thousandths_to_json(f.target_thousandths);
    s["scheduled_seconds"] = f.scheduled_seconds;
    s["excluded_maintenance_seconds"] = f.excluded_maintenance_seconds;
    s["downtime_seconds"] = f.downtime_seconds;
    s["allowed_downtime_seconds"] = f.allowed_downtime_seconds;
    s["excess_downtime_seconds"] = f.excess_downtime_seconds;
    s["availability_percent"] = ten_thousandths_to_json(f.availability_ten_thousandths);
    s["met"] = f.met;
    s["interruptions"] = ids_json(f.interruptions);
    s["maintenance_downtime"] = ids_json(f.maintenance_downtime);
    s["customers_impacted"] = ids_json(f.customers_impacted);
    services.push_back(std::move(s));
  }
  Json credits = Json::array();
  for (const auto& c : report.credits) {
    Json r = Json::object();
    r["customer"] = c.customer;
    r["service"] = c.service;
    r["downtime_seconds"] = c.downtime_seconds;
    r["excess_downtime_seconds"] = c.excess_downtime_seconds;
    r["monthly_charge_cents"] = c.monthly_charge_cents;
    r["credit_cents"] = c.credit_cents;
    r["interruptions"] = ids_json(c.interruptions);
    r["maintenance_downtime"] = ids_json(c.maintenance_downtime);
    credits.push_back(std::move(r));
  }
  Json out = Json::object();
  out["month"] = format_month(report.month);
  out["services"] = std::move(services);
  out["credits"] = std::move(credits);
  return out;
}

namespace {

Json period_json(const Interval& period) {
  return {{"start", format_instant(period.start)}, {"end", format_instant(period.end)}};
}

}  // namespace

Json detailed_report_json(const AvailabilityReport& report, const Dataset& dataset,
                          std::optional<Instant> as_of) {
  Json out = report_to_json(report);
  std::unordered_map<std::string_view, const Service*> services;
  for (const auto& s : dataset.services) services.emplace(s.id, &s);
  std::unordered_map<std::string_view, const Customer*> customers;
  for (const auto& c : dataset.customers) customers.emplace(c.id, &c);

  for (std::size_t i = 0; i < report.services.size(); ++i) {
    const ServiceFigures& f = report.services[i];
    Json& s = out["services"][i];
    if (auto it = services.find(f.service); it != services.end()) {
      const Service& service = *it->second;
      s["name"] = service.name;
      s["environment"] = to_string(service.environment);
      s["timezone"] = zone_of(dataset, service);
    }
    s["period"] = period_json(f.period);
    s["maintenance_budget_seconds"] = f.maintenance_budget_seconds;
    s["maintenance_budget_used_seconds"] = f.maintenance_budget_used_seconds;
    Json timeline = Json::array();
    for (const auto& e : f.timeline) {
      timeline.push_back({{"id", e.id},
                          {"kind", to_string(e.kind)},
                          {"start", format_instant(e.span.start)},
                          {"end", format_instant(e.span.end)},
                          {"seconds", e.seconds},
                          {"customers", e.customers}});
    }
    s["timeline"] = std::move(timeline);
  }
  for (std::size_t i = 0; i < report.credits.size(); ++i) {
    Json& r = out["credits"][i];
    if (auto it = customers.find(report.credits[i].customer); it != customers.end()) {
      r["customer_name"] = it->second->name;
      r["billing_code"] = it->second->billing_code;
    }
  }
  // An as_of at or after the month's end changes nothing: the month is whole.
  if (as_of && *as_of < month_span(dataset, report.month).end) {
    out["as_of"] = format_instant(*as_of);
  }
  return out;
}

}  // namespace slmhub::availability
