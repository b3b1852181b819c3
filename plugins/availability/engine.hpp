// The availability engine: one service's figures for one month (DOMAIN.md §3) and the SLA
// credits they give rise to (DOMAIN.md §4), computed from a Dataset in integer seconds and
// integer cents only, so a report is reproducible to the second and to the cent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/domain.hpp"
#include "slmhub/time.hpp"

namespace slmhub::availability {

// One service in one month (DESIGN.md §5.4 `services[]`).
struct ServiceFigures {
  std::string service;
  int64_t target_thousandths = 0;
  int64_t scheduled_seconds = 0;
  int64_t excluded_maintenance_seconds = 0;
  int64_t downtime_seconds = 0;
  int64_t allowed_downtime_seconds = 0;
  int64_t excess_downtime_seconds = 0;
  // Availability in ten-thousandths of a percent, rounded half up (99.4189 % is 994189). For
  // display only: `met` is decided on exact seconds.
  int64_t availability_ten_thousandths = 1000000;
  bool met = true;
  std::vector<std::string> interruptions;         // contributed downtime; sorted
  std::vector<std::string> maintenance_downtime;  // windows that count as downtime; sorted
  std::vector<std::string> customers_impacted;    // sorted
  bool operator==(const ServiceFigures&) const = default;
};

// One customer's credit on one service (DESIGN.md §5.4 `credits[]`).
struct CreditRow {
  std::string customer;
  std::string service;
  int64_t downtime_seconds = 0;  // the customer's own D_c
  int64_t excess_downtime_seconds = 0;
  int64_t monthly_charge_cents = 0;
  int64_t credit_cents = 0;
  std::vector<std::string> interruptions;         // sorted
  std::vector<std::string> maintenance_downtime;  // sorted
  bool operator==(const CreditRow&) const = default;
};

struct AvailabilityReport {
  date::year_month month;
  std::vector<ServiceFigures> services;  // sorted by service id
  std::vector<CreditRow> credits;        // sorted by service, then customer
  bool operator==(const AvailabilityReport&) const = default;
};

// The report for every service of `dataset` in `month`. With `as_of`, the period ends there
// and open interruptions end there; without it, open interruptions run to the month's end.
// Expects a dataset that passed check_references; throws ValidationError when a service names
// a calendar that does not exist.
AvailabilityReport compute(const Dataset& dataset, date::year_month month,
                           std::optional<Instant> as_of);

// The half-up rounding of num/den for num >= 0, den > 0, in 128-bit integers so that
// charge × seconds products never overflow. Exposed for tests.
int64_t round_half_up(__int128 num, __int128 den);

}  // namespace slmhub::availability
