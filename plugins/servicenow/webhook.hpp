// The inbound webhook's checks, before anything is stored: who sent it (basic auth, a static
// token, or an HMAC-SHA256 signature with an optional timestamp against replays) and what it
// says (a flat JSON object of strings as business rules post it, read through a
// configurable field mapping). Each refusal is a Problem with the status the sender should
// see: 401 for credentials, signatures and stale timestamps, 400 for a body that is not a
// JSON object, 422 for one that names no known table or no sys_id, 413 for a body too large.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "slmhub/http.hpp"
#include "slmhub/json.hpp"
#include "slmhub/time.hpp"

namespace slmhub::servicenow {

struct WebhookSettings {
  enum class Auth { basic, token, hmac } auth = Auth::hmac;
  std::string username, password;  // basic
  // token: the header carrying it; for "authorization" the value is "Bearer <token>".
  std::string token_header = "authorization";
  std::string token;
  std::string hmac_secret;  // the key's bytes (the secret as configured is their base64)
  std::string signature_header = "x-sn-signature";
  // When set, the signed message is "<timestamp>.<body>" and the timestamp (epoch seconds)
  // must be within max_skew_seconds of now.
  std::string timestamp_header;
  std::int64_t max_skew_seconds = 300;
  std::int64_t max_body_bytes = 1048576;
  // Where the business rule puts each field we need (its JSON key for ours).
  std::string table_field = "table";
  std::string sys_id_field = "sys_id";
  std::string mod_count_field = "sys_mod_count";
  std::string updated_by_field = "sys_updated_by";
  std::string updated_on_field = "sys_updated_on";
  std::set<std::string> tables;  // tables this server syncs; others are refused
};

// What a webhook says, after mapping.
struct InboundChange {
  std::string table;
  std::string sys_id;
  std::int64_t mod_count = -1;  // -1 when the rule did not send it
  std::string updated_by;
  std::string updated_on;  // as sent ("yyyy-MM-dd HH:mm:ss"), "" when absent
};

// Throws Problem(401) unless `request` carries the configured credential.
void authenticate_webhook(const WebhookSettings& settings, const Request& request, Instant now);

// Throws Problem(400/413/422) naming what is wrong; otherwise the mapped change.
// `path_table`, when not empty, is the table the route names (a rule written for one table
// need not send it): the body's table, if it has one, must be the same.
InboundChange parse_webhook(const WebhookSettings& settings, const std::string& body,
                            std::string_view path_table = {});

}  // namespace slmhub::servicenow
