// The availability report as JSON, exactly the shape of DESIGN.md §5.4 (and of the vectors in
// shared/vectors), so the offline CLI and any later HTTP route print the same document.
#pragma once

#include "engine.hpp"
#include "slmhub/json.hpp"

namespace slmhub::availability {

Json report_to_json(const AvailabilityReport& report);

// 994189 ten-thousandths → the JSON number 99.4189; whole values (100) as integers. Display
// only: the digits are built in integers and parsed once, so no arithmetic is done in binary
// floating point.
Json ten_thousandths_to_json(int64_t value);

}  // namespace slmhub::availability
