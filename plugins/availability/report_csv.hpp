// The availability report as CSV for spreadsheets (RFC 4180): one header row, then one row
// per service (`record` = service) and one per credit (`record` = credit). Lists are joined
// with spaces; percentages are exact decimal text built from integers.
#pragma once

#include <string>

#include "engine.hpp"

namespace slmhub::availability {

std::string report_to_csv(const AvailabilityReport& report);

// 994189 with 4 digits → "99.4189"; 99750 with 3 → "99.75"; trailing zeros dropped.
std::string decimal_text(int64_t value, int digits);

}  // namespace slmhub::availability
