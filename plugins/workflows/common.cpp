#include "common.hpp"

#include <cstdio>

namespace slmhub::workflows {

std::string numbered_id(const char* prefix, std::int64_t number) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%s-%06lld", prefix, static_cast<long long>(number));
  return buffer;
}

std::optional<std::int64_t> parse_numbered_id(const char* prefix, const std::string& id) {
  const std::string head = std::string(prefix) + "-";
  if (!id.starts_with(head) || id.size() == head.size() || id.size() > head.size() + 18) {
    return std::nullopt;
  }
  std::int64_t number = 0;
  for (char ch : id.substr(head.size())) {
    if (ch < '0' || ch > '9') return std::nullopt;
    number = number * 10 + (ch - '0');
  }
  // Only the id as issued: "CRQ-7" would find CRQ-000007, and the deadline, the audit rows and
  // the documents filed under the text typed would then not be that request's.
  if (numbered_id(prefix, number) != id) return std::nullopt;
  return number;
}

Json step_json(const Actor& actor, Instant at) {
  return {{"by", actor.id}, {"at", format_instant(at)}};
}

std::string where_equal(std::initializer_list<std::pair<const char*, std::string>> filters,
                        Params& params) {
  std::string out;
  for (const auto& [column, value] : filters) {
    if (value.empty()) continue;
    out += std::string(" AND ") + column + " = ?";
    params.emplace_back(value);
  }
  return out;
}

}  // namespace slmhub::workflows
