// JSON of the billing inputs (rate cards, time entries, on-call requests) and of invoices.
// Reading is strict: unknown keys and wrong types are errors naming the JSON path.
#pragma once

#include <string>
#include <vector>

#include "engine.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/json.hpp"

namespace slmhub::billing {

RateCard rate_card_from_json(const Json& value, const std::string& path,
                             std::vector<FieldError>& errors);
Json to_json(const RateCard& card);

// `id` is optional on input (the plugin assigns "TE-000001"); `customer` required.
TimeEntry time_entry_from_json(const Json& value, const std::string& path,
                               std::vector<FieldError>& errors);
Json to_json(const TimeEntry& entry);

// `requested_on` is optional on input (today, in the provider's zone).
OncallRequest oncall_request_from_json(const Json& value, const std::string& path,
                                       std::vector<FieldError>& errors);
Json to_json(const OncallRequest& request);

// An invoice line as stored and served: amounts in cents, quantity as a decimal string.
Json to_json(const Line& line, int number);

}  // namespace slmhub::billing
