// The dataset rules that are not about a value's JSON type (DESIGN.md §5.3), shared by the
// strict readers in domain.cpp and the fast decoder in dataset_fast.cpp, so a rule is written
// once and both readers agree on what a valid dataset is. Each appends to `errors` what it
// finds, at `path`.
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/domain.hpp"

namespace slmhub::detail {

// The largest maintenance budget a service may have: the engine counts it in seconds
// (hours * 3600), which must not overflow. (A fiscal year has at most 8,784 hours, so a
// larger budget is as good as unlimited; stores may hold such values, and keep them.)
inline constexpr int64_t kMaxBudgetHoursPerFy = std::numeric_limits<int64_t>::max() / 3600;

// A period's end, when present, must come after its start: an empty or reversed period is a
// typo, never a zero-length event. `end_path` is the path of the end.
void check_end_after_start(std::optional<Instant> start, std::optional<Instant> end,
                           const std::string& end_path, std::vector<FieldError>& errors);

// A contact's e-mail must look like local@domain.
void check_email(const std::string& email, const std::string& path,
                 std::vector<FieldError>& errors);

// An interruption names each impacted customer once; `path` is the list's path.
void check_distinct_customers(const std::vector<std::string>& customers, const std::string& path,
                              std::vector<FieldError>& errors);

}  // namespace slmhub::detail
