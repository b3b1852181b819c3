// The availability report as CSV for spreadsheets (RFC 4180): one header row, then one row
// per service (`record` = service) and one per credit (`record` = credit). Lists are joined
// with spaces; percentages are exact decimal text built from integers.
#pragma once

#include <string>

#include "engine.hpp"
#include "slmhub/json.hpp"

namespace slmhub::availability {

std::string report_to_csv(const AvailabilityReport& report);

}  // namespace slmhub::availability
