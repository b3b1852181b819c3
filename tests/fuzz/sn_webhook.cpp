// The ServiceNow webhook (POST /api/v1/webhooks/servicenow): a body signed with the configured
// HMAC secret authenticates, whatever its bytes; parse_webhook then refuses with a Problem of
// 400 (not a JSON object), 413 (too large) or 422 (no synced table or sys_id, a bad
// sys_mod_count) whose texts are printable, or returns a change naming a synced table, a
// sys_id of 1 to 64 bytes and a mod count of -1 (absent) or more.
#include <string>

#include "checks.hpp"
#include "signature.hpp"
#include "slmhub/time.hpp"
#include "webhook.hpp"

namespace slmhub::fuzz {

void check_sn_webhook(std::string_view input) {
  static const servicenow::WebhookSettings kSettings = [] {
    servicenow::WebhookSettings s;
    s.auth = servicenow::WebhookSettings::Auth::hmac;
    s.hmac_secret = "fuzz-secret";
    s.timestamp_header = "x-sn-timestamp";
    s.max_body_bytes = 65536;
    s.tables = {"incident", "cmdb_ci_outage", "change_request"};
    return s;
  }();
  const std::string body(input);
  const Instant now = from_epoch(1793711100);

  Request request;
  request.method = "POST";
  request.path = "/api/v1/webhooks/servicenow";
  request.body = body;
  request.headers["x-sn-timestamp"] = "1793711100";
  request.headers["x-sn-signature"] =
      servicenow::hmac_sha256_base64(kSettings.hmac_secret, "1793711100." + body);
  try {
    servicenow::authenticate_webhook(kSettings, request, now);
  } catch (const Problem& p) {
    throw Finding("a correctly signed body does not authenticate: " + describe(p));
  }

  servicenow::InboundChange change;
  try {
    change = servicenow::parse_webhook(kSettings, body);
  } catch (const Problem& p) {
    check_problem(p, "parse_webhook");
    expect(p.status() == 400 || p.status() == 413 || p.status() == 422,
           "parse_webhook: unexpected status " + describe(p));
    return;
  }
  expect(kSettings.tables.contains(change.table), "parse_webhook: a table that is not synced");
  expect(!change.sys_id.empty() && change.sys_id.size() <= 64, "parse_webhook: a bad sys_id");
  expect(change.mod_count >= -1, "parse_webhook: a negative mod count");
}

}  // namespace slmhub::fuzz
