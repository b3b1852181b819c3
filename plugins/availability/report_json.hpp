// The availability report as JSON, exactly the shape of DESIGN.md §5.4 (and of the vectors in
// shared/vectors), so the offline CLI and any later HTTP route print the same document.
#pragma once

#include <optional>
#include "engine.hpp"

#include "slmhub/domain.hpp"
#include "slmhub/json.hpp"
#include "slmhub/time.hpp"

namespace slmhub::availability {

Json report_to_json(const AvailabilityReport& report);

// The §5.4 document plus what the publishable page and a frozen revision need and the
// dataset may later lose: per service its name, environment, zone, period, maintenance budget
// and use, and timeline; per credit the customer's name and billing code; `as_of` when given.
Json detailed_report_json(const AvailabilityReport& report, const Dataset& dataset,
                          std::optional<Instant> as_of);

// 994189 ten-thousandths → the JSON number 99.4189; whole values (100) as integers. Display
// only: the digits are built in integers and parsed once, so no arithmetic is done in binary
// floating point.
Json ten_thousandths_to_json(int64_t value);

}  // namespace slmhub::availability
