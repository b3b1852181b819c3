// What changed between two revisions of a month's report, so that recomputing after a late
// interruption shows the reviewers exactly which figures moved (DOMAIN.md §5: a published
// report is frozen; a recomputation is a new draft revision with its difference).
#pragma once

#include "slmhub/json.hpp"

namespace slmhub::availability {

// Compares two report documents (§5.4, with or without details) on the §5.4 figures and a
// credit's billing code: services by id, credits by (service, customer). Returns a list of
// {"path", "before", "after"} objects, paths like `services[oracle-prod].downtime_seconds` or
// `credits[oracle-prod/library].credit_cents`; a service or credit present on one side only
// is one entry with null on the other. Empty when the figures are the same.
Json report_changes(const Json& before, const Json& after);

}  // namespace slmhub::availability
