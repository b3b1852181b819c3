#include "webhook.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <string_view>

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

const char* type_name(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
    default:
      return "number";
  }
}

// A field's value as text: business rules send strings, some send numbers or booleans.
std::optional<std::string> text_of(simdjson::dom::element value, std::string_view key) {
  std::string_view text;
  switch (value.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      return std::nullopt;
    case simdjson::dom::element_type::STRING:
      return std::string(value.get_string().value_unsafe());
    case simdjson::dom::element_type::INT64:
      return std::to_string(value.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return std::to_string(value.get_uint64().value_unsafe());
    case simdjson::dom::element_type::BOOL:
      return value.get_bool().value_unsafe() ? "true" : "false";
    case simdjson::dom::element_type::OBJECT:
      // A reference sent with its link.
      if (value["value"].get_string().get(text) == simdjson::SUCCESS) return std::string(text);
      break;
    default:
      break;
  }
  throw Problem(422, "Unprocessable Content",
                "ServiceNow webhook: $." + std::string(key) + " is " + type_name(value.type()) +
                    ", not a string");
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
        // Wide enough for any two 64-bit values: a timestamp near the limits must not wrap
        // around into the window.
        const __int128 skew = static_cast<__int128>(to_epoch(now)) - *seconds;
        if (skew > s.max_skew_seconds || -skew > s.max_skew_seconds) {
          const bool near = skew < 1'000'000'000'000 && -skew < 1'000'000'000'000;
          unauthorized(
              "the timestamp is " +
              (near ? std::to_string(static_cast<std::int64_t>(skew)) + " s" : std::string("far")) +
              " away from now (at most " + std::to_string(s.max_skew_seconds) +
              " s): a replay or a clock that is off");
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

InboundChange parse_webhook(const WebhookSettings& s, const std::string& body,
                            std::string_view path_table) {
  if (static_cast<std::int64_t>(body.size()) > s.max_body_bytes) {
    throw Problem(413, "Content Too Large",
                  "ServiceNow webhook: the body has " + std::to_string(body.size()) +
                      " bytes, more than " + std::to_string(s.max_body_bytes) +
                      " (plugins.servicenow.webhook.max_body_bytes)");
  }
  // One parser per request thread: it keeps its buffers from one webhook to the next. It
  // checks the whole body (structure, UTF-8, escapes, numbers), not only the fields read.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element document;
  if (const auto error = parser.parse(body).get(document); error != simdjson::SUCCESS) {
    throw Problem(400, "Bad Request",
                  "ServiceNow webhook: the body is not JSON (" +
                      std::string(simdjson::error_message(error)) + ")");
  }
  simdjson::dom::object object;
  if (document.get_object().get(object) != simdjson::SUCCESS) {
    throw Problem(400, "Bad Request",
                  "ServiceNow webhook: the body is a JSON " +
                      std::string(type_name(document.type())) + ", not an object of fields");
  }
  const auto unprocessable = [](const std::string& detail) {
    return Problem(422, "Unprocessable Content", "ServiceNow webhook: " + detail);
  };
  // The mapped fields, each found once: a field sent twice has no one meaning.
  struct Mapped {
    const std::string& name;
    std::optional<std::string> text;
    bool seen = false;
  };
  std::array<Mapped, 5> mapped{{{s.table_field, {}, false},
                                {s.sys_id_field, {}, false},
                                {s.mod_count_field, {}, false},
                                {s.updated_by_field, {}, false},
                                {s.updated_on_field, {}, false}}};
  for (const auto field : object) {
    for (Mapped& m : mapped) {
      if (field.key != m.name) continue;
      if (m.seen) throw unprocessable("$." + m.name + " is sent twice");
      m.seen = true;
      m.text = text_of(field.value, m.name);
    }
  }
  const auto& [table, sys_id, mod_count, updated_by, updated_on] = mapped;
  InboundChange change;
  change.table = table.text.value_or("");
  if (!path_table.empty()) {
    if (!change.table.empty() && change.table != path_table) {
      throw unprocessable("$." + s.table_field + " " + quote_text(change.table) +
                          " is not the table the path names, " +
                          quote_text(std::string(path_table)));
    }
    change.table = path_table;
  }
  if (change.table.empty()) {
    throw unprocessable("$." + s.table_field +
                        " (the table) is missing; a rule that does not send it posts to "
                        "/api/v1/webhooks/servicenow/{table}");
  }
  if (!s.tables.contains(change.table)) {
    std::string known;
    for (const auto& t : s.tables) known += (known.empty() ? "" : ", ") + t;
    // quote_text: a cut inside a UTF-8 sequence would make the problem+json answer fail.
    throw unprocessable("table " + quote_text(change.table) + " is not synced (synced: " + known +
                        ")");
  }
  change.sys_id = sys_id.text.value_or("");
  if (change.sys_id.empty())
    throw unprocessable("$." + s.sys_id_field + " (the sys_id) is missing");
  if (change.sys_id.size() > 64) throw unprocessable("$." + s.sys_id_field + " is longer than 64");
  // It becomes a segment of the record's URL: "." or "/" would name another resource.
  if (!std::all_of(change.sys_id.begin(), change.sys_id.end(),
                   [](unsigned char c) { return std::isalnum(c) != 0 || c == '_' || c == '-'; })) {
    throw unprocessable("$." + s.sys_id_field + " " + quote_text(change.sys_id) +
                        " is not a sys_id (letters, digits, '_' and '-')");
  }
  if (mod_count.text) {
    auto value = parse_integer(*mod_count.text);
    if (!value || *value < 0) {
      throw unprocessable("$." + s.mod_count_field + " is " + quote_text(*mod_count.text) +
                          ", not a count");
    }
    change.mod_count = *value;
  }
  change.updated_by = updated_by.text.value_or("");
  change.updated_on = updated_on.text.value_or("");
  return change;
}

}  // namespace slmhub::servicenow
