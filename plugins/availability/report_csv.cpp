#include "report_csv.hpp"

#include <sstream>
#include <string_view>
#include <vector>

namespace slmhub::availability {
namespace {

// RFC 4180: quote a field holding a comma, a quote or a line break; double inner quotes.
std::string field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string joined(const IdList& items) {
  std::string text;
  for (const std::string_view item : items) {
    if (!text.empty()) text += ' ';
    text += item;
  }
  return text;
}

void row(std::ostringstream& out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << field(fields[i]);
  out << "\r\n";
}

}  // namespace

std::string report_to_csv(const AvailabilityReport& report) {
  std::ostringstream out;
  const std::string month = format_month(report.month);
  row(out, {"month", "record", "service", "customer", "target_percent", "scheduled_seconds",
            "excluded_maintenance_seconds", "downtime_seconds", "allowed_downtime_seconds",
            "excess_downtime_seconds", "availability_percent", "met", "monthly_charge_cents",
            "credit_cents", "interruptions", "maintenance_downtime", "customers_impacted"});
  for (const auto& s : report.services) {
    row(out,
        {month, "service", s.service, "", decimal_text(s.target_thousandths, 3),
         std::to_string(s.scheduled_seconds), std::to_string(s.excluded_maintenance_seconds),
         std::to_string(s.downtime_seconds), std::to_string(s.allowed_downtime_seconds),
         std::to_string(s.excess_downtime_seconds), decimal_text(s.availability_ten_thousandths, 4),
         s.met ? "true" : "false", "", "", joined(s.interruptions), joined(s.maintenance_downtime),
         joined(s.customers_impacted)});
  }
  for (const auto& c : report.credits) {
    row(out, {month, "credit", c.service, c.customer, "", "", "",
              std::to_string(c.downtime_seconds), "", std::to_string(c.excess_downtime_seconds), "",
              "", std::to_string(c.monthly_charge_cents), std::to_string(c.credit_cents),
              joined(c.interruptions), joined(c.maintenance_downtime), ""});
  }
  return out.str();
}

}  // namespace slmhub::availability
