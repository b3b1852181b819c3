// Report JSON writer (DESIGN.md §5.4). Keys print in nlohmann::json's sorted order; the
// design fixes names and meanings, not key order.
#include "report_json.hpp"

#include <string>

namespace slmhub::availability {

Json ten_thousandths_to_json(int64_t value) { return decimal_to_json(value, 4); }

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
    s["interruptions"] = f.interruptions;
    s["maintenance_downtime"] = f.maintenance_downtime;
    s["customers_impacted"] = f.customers_impacted;
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
    r["interruptions"] = c.interruptions;
    r["maintenance_downtime"] = c.maintenance_downtime;
    credits.push_back(std::move(r));
  }
  Json out = Json::object();
  out["month"] = format_month(report.month);
  out["services"] = std::move(services);
  out["credits"] = std::move(credits);
  return out;
}

}  // namespace slmhub::availability
