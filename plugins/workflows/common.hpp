// Small pieces every workflow document shares: numbered ids ("CRQ-000042"), the step record
// {"by", "at"}, and list filters.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "slmhub/catalog.hpp"
#include "slmhub/json.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

// "CRQ-000042" for ("CRQ", 42).
std::string numbered_id(const char* prefix, std::int64_t number);
// 42 for ("CRQ", "CRQ-000042"); nullopt for anything else (which is then simply not found).
std::optional<std::int64_t> parse_numbered_id(const char* prefix, const std::string& id);

// Who took a step and when: {"by": actor, "at": instant}.
Json step_json(const Actor& actor, Instant at);

// " AND column = ?" for each filter whose value is not empty, with the values appended to
// `params`: the optional filters of the list routes.
std::string where_equal(std::initializer_list<std::pair<const char*, std::string>> filters,
                        Params& params);

}  // namespace slmhub::workflows
