#include "webhook.hpp"

#include <charconv>

#include "signature.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::servicenow {
namespace {

[[noreturn]] void unauthorized(const std::string& detail) {
  throw Problem(401, "Unauthorized", "ServiceNow webhook: " + detail);
}

std::optional<std::int64_t> parse_integer(const std::string& text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// A field's value as text: business rules send strings, some send numbers or booleans.
std::optional<std::string> text_of(const Json& object, const std::string& key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer() || it->is_boolean()) return it->dump();
  if (it->is_object() && it->contains("value") && (*it)["value"].is_string()) {
    return (*it)["value"].get<std::string>();  // a reference sent with its link
  }
  throw Problem(
      422, "Unprocessable Content",
      "ServiceNow webhook: $." + key + " is " + std::string(it->type_name()) + ", not a string");
}

}  // namespace

void authenticate_webhook(const WebhookSettings& s, const Request& request, Instant now) {
  switch (s.auth) {
    case WebhookSettings::Auth::basic: {
      const std::string header = request.header("authorization");
      if (!header.starts_with("Basic ")) unauthorized("basic credentials are required");
      std::string decoded;
      try {
        decoded = base64_decode(header.substr(6));
      } catch (const std::invalid_argument&) {
        unauthorized("the basic credentials are not base64");
      }
      // Both compared in full, so a wrong user and a wrong password take the same time.
      const bool ok = constant_time_equal(decoded, s.username + ":" + s.password);
      if (!ok) unauthorized("wrong user or password");
      return;
    }
    case WebhookSettings::Auth::token: {
      std::string value = request.header(s.token_header);
      if (s.token_header == "authorization") {
        if (!value.starts_with("Bearer ")) unauthorized("a bearer token is required");
        value = value.substr(7);
      }
      if (value.empty()) unauthorized("the token header '" + s.token_header + "' is missing");
      if (!constant_time_equal(value, s.token)) unauthorized("wrong token");
      return;
    }
    case WebhookSettings::Auth::hmac: {
      const std::string signature = request.header(s.signature_header);
      if (signature.empty())
        unauthorized("the signature header '" + s.signature_header + "' is missing");
      std::string message;
      if (!s.timestamp_header.empty()) {
        const std::string stamp = request.header(s.timestamp_header);
        const auto seconds = parse_integer(stamp);
        if (!seconds) {
          unauthorized("the timestamp header '" + s.timestamp_header +
                       "' must be epoch seconds, got " + quote_text(stamp));
        }
        const std::int64_t skew = to_epoch(now) - *seconds;
        if (skew > s.max_skew_seconds || -skew > s.max_skew_seconds) {
          unauthorized("the timestamp is " + std::to_string(skew) + " s away from now (at most " +
                       std::to_string(s.max_skew_seconds) + " s): a replay or a clock that is off");
        }
        message = stamp + ".";
      }
      message += request.body;
      if (!constant_time_equal(signature, hmac_sha256_base64(s.hmac_secret, message))) {
        unauthorized("the signature does not match the body");
      }
      return;
    }
  }
}

InboundChange parse_webhook(const WebhookSettings& s, const std::string& body) {
  if (static_cast<std::int64_t>(body.size()) > s.max_body_bytes) {
    throw Problem(413, "Content Too Large",
                  "ServiceNow webhook: the body has " + std::to_string(body.size()) +
                      " bytes, more than " + std::to_string(s.max_body_bytes) +
                      " (plugins.servicenow.webhook.max_body_bytes)");
  }
  Json json;
  try {
    json = Json::parse(body, nullptr, true, false);
  } catch (const Json::parse_error& e) {
    throw Problem(
        400, "Bad Request",
        "ServiceNow webhook: the body is not JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const Json::out_of_range&) {
    // nlohmann reports a number beyond double's range (1e400) as out_of_range, not parse_error.
    throw Problem(400, "Bad Request",
                  "ServiceNow webhook: the body is not JSON (a number out of range)");
  }
  if (!json.is_object()) {
    throw Problem(400, "Bad Request",
                  "ServiceNow webhook: the body is a JSON " + std::string(json.type_name()) +
                      ", not an object of fields");
  }
  InboundChange change;
  const auto unprocessable = [](const std::string& detail) {
    return Problem(422, "Unprocessable Content", "ServiceNow webhook: " + detail);
  };
  change.table = text_of(json, s.table_field).value_or("");
  if (change.table.empty()) throw unprocessable("$." + s.table_field + " (the table) is missing");
  if (!s.tables.contains(change.table)) {
    std::string known;
    for (const auto& t : s.tables) known += (known.empty() ? "" : ", ") + t;
    // quote_text: a cut inside a UTF-8 sequence would make the problem+json answer fail.
    throw unprocessable("table " + quote_text(change.table) + " is not synced (synced: " + known +
                        ")");
  }
  change.sys_id = text_of(json, s.sys_id_field).value_or("");
  if (change.sys_id.empty())
    throw unprocessable("$." + s.sys_id_field + " (the sys_id) is missing");
  if (change.sys_id.size() > 64) throw unprocessable("$." + s.sys_id_field + " is longer than 64");
  if (auto count = text_of(json, s.mod_count_field)) {
    auto value = parse_integer(*count);
    if (!value || *value < 0) {
      throw unprocessable("$." + s.mod_count_field + " is " + quote_text(*count) + ", not a count");
    }
    change.mod_count = *value;
  }
  change.updated_by = text_of(json, s.updated_by_field).value_or("");
  change.updated_on = text_of(json, s.updated_on_field).value_or("");
  change.body = std::move(json);
  return change;
}

}  // namespace slmhub::servicenow
