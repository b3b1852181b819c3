// The servicenow plugin module: settings from plugins.servicenow.*, the webhook route, the
// status routes, the inbox and ticket subscriptions, the outbox's "servicenow" channel and
// the reconciliation job. The logic is in slmhub_servicenow_core (sync, webhook) and the
// ServiceNow connector (client); this file only wires them in.
#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "client.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"
#include "sync.hpp"
#include "webhook.hpp"

namespace {

using slmhub::ConfigType;
using slmhub::Json;
using slmhub::Request;
using slmhub::Response;
namespace sn = slmhub::servicenow;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

[[noreturn]] void bad_setting(const std::string& key, const std::string& why) {
  throw std::invalid_argument("plugins.servicenow." + key + ": " + why);
}

const std::set<std::string> kStatuses = {"new", "open", "pending", "resolved", "closed"};

bool is_state_code(const std::string& s) {
  const auto digits = s.starts_with('-') ? s.substr(1) : s;
  return !digits.empty() && digits.size() < 4 &&
         std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
}

// incident.states_in (CODE=status items) and incident.states_out (status=CODE items).
void read_state_mappings(const slmhub::Config& config, sn::SyncSettings& sync) {
  const auto pairs = [&](const std::string& key) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& item : config.list(key)) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) bad_setting(key, "'" + item + "' is not a LEFT=RIGHT item");
      out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    return out;
  };
  sync.status_of_state.clear();
  for (const auto& [code, status] : pairs("incident.states_in")) {
    if (!is_state_code(code))
      bad_setting("incident.states_in", "'" + code + "' is not a state code");
    if (!kStatuses.contains(status)) {
      bad_setting("incident.states_in",
                  "'" + status + "' is not a ticket status (new, open, pending, resolved, closed)");
    }
    sync.status_of_state[code] = status;
  }
  sync.state_of_status.clear();
  for (const auto& [status, code] : pairs("incident.states_out")) {
    if (!kStatuses.contains(status)) {
      bad_setting("incident.states_out",
                  "'" + status + "' is not a ticket status (new, open, pending, resolved, closed)");
    }
    if (!is_state_code(code))
      bad_setting("incident.states_out", "'" + code + "' is not a state code");
    sync.state_of_status[status] = code;
  }
  for (const auto& status : kStatuses) {
    if (!sync.state_of_status.contains(status)) {
      bad_setting("incident.states_out", "status '" + status + "' has no state code");
    }
  }
}

class ServiceNowPlugin : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"servicenow", "0.1.0", slmhub::kPluginApi, {}};
  }

  std::vector<slmhub::ConfigKey> config_schema() const override {
    using T = ConfigType;
    return {
        {"instance.url", T::string, "",
         "the instance (https://example.service-now.com); empty: webhooks are kept, nothing is "
         "read or written"},
        {"instance.auth", T::string, "basic", "basic or oauth (password grant)"},
        {"instance.username", T::string, "",
         "the integration user (secret servicenow_password); our writes show as this user"},
        {"instance.client_id", T::string, "", "OAuth client id (secret servicenow_client_secret)"},
        {"instance.ca_file", T::string, "", "extra CA certificate file to verify the instance"},
        {"instance.client_certificate", T::string, "", "PEM client certificate (mutual TLS)"},
        {"instance.client_key", T::string, "", "PEM key of the client certificate"},
        {"instance.max_concurrency", T::integer, "4", "requests in flight to the instance"},
        {"instance.requests_per_second", T::integer, "20",
         "request budget for the instance (0: unlimited)"},
        {"instance.page_size", T::integer, "1000", "records per page when reading"},
        {"instance.timeout_ms", T::integer, "30000", "time-out of one request"},
        {"webhook.auth", T::string, "hmac",
         "how webhooks prove their origin: hmac (secret servicenow_webhook_secret), token "
         "(secret servicenow_webhook_token) or basic (webhook.username, secret "
         "servicenow_webhook_password)"},
        {"webhook.username", T::string, "", "user of basic webhook authentication"},
        {"webhook.token_header", T::string, "Authorization",
         "header carrying the static token (Authorization: Bearer <token>, or the token itself "
         "in any other header)"},
        {"webhook.signature_header", T::string, "X-SN-Signature",
         "header carrying base64(HMAC-SHA256(secret, body))"},
        {"webhook.timestamp_header", T::string, "",
         "header carrying epoch seconds; when set the signed text is '<timestamp>.<body>' and "
         "stale timestamps are refused"},
        {"webhook.max_skew_seconds", T::integer, "300", "oldest (and newest) timestamp accepted"},
        {"webhook.max_body_bytes", T::integer, "1048576", "largest webhook body (413 above)"},
        {"webhook.field.table", T::string, "table", "JSON key of the table name in a webhook"},
        {"webhook.field.sys_id", T::string, "sys_id", "JSON key of the sys_id"},
        {"webhook.field.sys_mod_count", T::string, "sys_mod_count", "JSON key of sys_mod_count"},
        {"webhook.field.sys_updated_by", T::string, "sys_updated_by", "JSON key of sys_updated_by"},
        {"webhook.field.sys_updated_on", T::string, "sys_updated_on", "JSON key of sys_updated_on"},
        {"incident.queue", T::string, "servicenow",
         "ticket queue of incidents raised in ServiceNow"},
        {"incident.prefix", T::string, "SNI", "case-number prefix of that queue"},
        {"incident.close_code", T::string, "Solved (Permanently)",
         "close_code set when a ticket is resolved here (the lists differ by release)"},
        {"incident.states_in", T::list, "1=new,2=open,3=pending,6=resolved,7=closed,8=closed",
         "incident state code to ticket status (new, open, pending, resolved, closed); a code "
         "not listed is open"},
        {"incident.states_out", T::list, "new=1,open=2,pending=3,resolved=6,closed=7",
         "ticket status to the incident state code written; every status needs one"},
        {"incident.outage_field", T::string, "",
         "incident field (e.g. u_outage) that marks an incident as an outage: once resolved it "
         "counts as an interruption of its CI's service from opened_at to resolved_at"},
        {"outbound.enabled", T::boolean, "true",
         "create and update incidents for tickets created or changed here"},
        {"outbound.kinds", T::list, "incident,service_request", "ticket kinds that go out"},
        {"ci_services", T::list, "",
         "CI (cmdb_ci or business_service sys_id) to service, comma-separated SYS_ID=SERVICE "
         "items: outages and changes of other CIs are not ours"},
        {"sweep.schedule", T::cron, "*/5 * * * *", "when the reconciliation sweep runs (UTC)"},
        {"sweep.tables", T::list, "incident,sys_journal_field,cmdb_ci_outage,change_request",
         "tables the sweep reads"},
        {"sweep.since", T::string, "",
         "where the first sweep starts (yyyy-MM-dd HH:mm:ss UTC); empty: from the beginning"},
        {"inbox.keep_days", T::integer, "30",
         "days processed webhooks (with their bodies) and the marks of our writes are kept; "
         "the daily job servicenow.prune deletes older ones"},
        {"sweep.overlap_seconds", T::integer, "120",
         "how far before where the last sweep stopped the next one starts again, for changes "
         "an instance stamped earlier than it committed them"},
    };
  }

  void start(slmhub::Host& host) override {
    const auto& config = host.config();
    sn::SyncSettings sync;
    sync.integration_user = config.string("instance.username");
    sync.incident_queue = config.string("incident.queue", "servicenow");
    sync.incident_prefix = config.string("incident.prefix", "SNI");
    sync.close_code = config.string("incident.close_code", "Solved (Permanently)");
    sync.outage_field = config.string("incident.outage_field");
    if (!sync.outage_field.empty() && !sn::is_field_name(sync.outage_field)) {
      // Every read of an incident would be refused, and the webhooks behind it held up.
      bad_setting("incident.outage_field",
                  "'" + sync.outage_field + "' is not a field name (letters, digits, '_' and '.')");
    }
    read_state_mappings(config, sync);
    const auto kinds = config.list("outbound.kinds");
    // Nothing goes out without the switch: no ticket's values can win a conflict then.
    if (config.boolean("outbound.enabled", true))
      sync.outbound_kinds = {kinds.begin(), kinds.end()};
    else
      sync.outbound_kinds.clear();
    for (const auto& item : config.list("ci_services")) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
        bad_setting("ci_services", "'" + item + "' is not SYS_ID=SERVICE");
      }
      sync.ci_services[item.substr(0, eq)] = item.substr(eq + 1);
    }
    sync.sweep_tables = config.list("sweep.tables");
    for (const auto& t : sync.sweep_tables) {
      if (t != "incident" && t != "sys_journal_field" && t != "cmdb_ci_outage" &&
          t != "change_request") {
        bad_setting("sweep.tables", "'" + t + "' is not synced");
      }
    }
    sync.sweep_since = config.string("sweep.since");
    if (!sync.sweep_since.empty()) {
      try {
        sn::parse_glide_datetime(sync.sweep_since);
      } catch (const std::exception& e) {
        bad_setting("sweep.since", e.what());
      }
    }
    sync.sweep_overlap_seconds = config.integer("sweep.overlap_seconds", 120);
    if (sync.sweep_overlap_seconds < 0 || sync.sweep_overlap_seconds > 86400) {
      bad_setting("sweep.overlap_seconds", "must be from 0 to 86400 (a day)");
    }
    const std::int64_t keep_days = config.integer("inbox.keep_days", 30);
    if (keep_days < 0 || keep_days > 36500) {
      bad_setting("inbox.keep_days", "must be from 0 to 36500 (a hundred years)");
    }

    std::shared_ptr<sn::Client> client;
    if (const auto url = config.string("instance.url"); !url.empty()) {
      sn::ClientSettings cs;
      cs.base_url = url;
      const auto auth = config.string("instance.auth", "basic");
      if (auth == "oauth") {
        cs.auth = sn::ClientSettings::Auth::oauth;
      } else if (auth != "basic") {
        bad_setting("instance.auth", "must be basic or oauth, not '" + auth + "'");
      }
      cs.username = sync.integration_user;
      if (cs.username.empty()) bad_setting("instance.username", "the integration user is needed");
      cs.password = host.secrets().get("servicenow_password").value_or("");
      if (cs.password.empty()) {
        bad_setting("instance.username", "secret servicenow_password is not set");
      }
      cs.client_id = config.string("instance.client_id");
      cs.client_secret = host.secrets().get("servicenow_client_secret").value_or("");
      if (cs.auth == sn::ClientSettings::Auth::oauth &&
          (cs.client_id.empty() || cs.client_secret.empty())) {
        bad_setting("instance.client_id",
                    "OAuth needs instance.client_id and the secret servicenow_client_secret");
      }
      cs.ca_file = config.string("instance.ca_file");
      cs.client_certificate = config.string("instance.client_certificate");
      cs.client_key = config.string("instance.client_key");
      // Ranges checked here, where the keys' names are known (the client names its fields).
      const auto in_range = [&](const char* key, std::int64_t fallback, std::int64_t min,
                                std::int64_t max) {
        const std::int64_t v = config.integer(key, fallback);
        if (v < min || v > max) {
          bad_setting(key, "must be from " + std::to_string(min) + " to " + std::to_string(max) +
                               ", found " + std::to_string(v));
        }
        return v;
      };
      cs.max_concurrency = static_cast<int>(in_range("instance.max_concurrency", 4, 1, 64));
      cs.requests_per_second =
          static_cast<int>(in_range("instance.requests_per_second", 20, 0, 100000));
      cs.page_size = static_cast<int>(in_range("instance.page_size", 1000, 1, 10000));
      cs.request_timeout =
          std::chrono::milliseconds(in_range("instance.timeout_ms", 30000, 1, 3600000));
      client = std::make_shared<sn::Client>(cs);
    } else {
      host.log().warning(
          "plugins.servicenow.instance.url is not set: webhooks are kept in the inbox, nothing "
          "is read from or written to ServiceNow");
    }

    webhook_ = webhook_settings(host);
    sync_ = std::make_unique<sn::Sync>(host, sync, client);
    sync_->migrate();
    host.store().transact([&](slmhub::Tx& tx) {
      host.tickets().define_queue(tx, sync.incident_queue, sync.incident_prefix);
    });

    sn::Sync& s = *sync_;
    host.events().subscribe("servicenow.apply", {"servicenow.received"},
                            [&s](const slmhub::Event& e) {
                              s.process_inbox(e.payload.at("inbox").get<std::int64_t>());
                            });
    if (client && config.boolean("outbound.enabled", true)) {
      host.events().subscribe("servicenow.outbound",
                              {"ticket.created", "ticket.updated", "ticket.message_added"},
                              [&s](const slmhub::Event& e) { s.on_ticket_event(e); });
      host.outbox().register_sender("servicenow",
                                    [&s](const slmhub::OutboxMessage& m) { s.send(m); });
    }
    host.scheduler().add({"servicenow.sweep", config.string("sweep.schedule", "*/5 * * * *"), "UTC",
                          "reads what changed in ServiceNow since the last sweep and applies what "
                          "webhooks missed",
                          [&s](const slmhub::JobContext&) { return s.sweep(); }});
    host.scheduler().add(
        {"servicenow.prune", "17 3 * * *", "UTC",
         "deletes processed webhooks, marks of our writes and notes of tickets' changes older "
         "than plugins.servicenow.inbox.keep_days",
         [&s, keep_days](const slmhub::JobContext&) { return s.prune(keep_days); }});
    register_routes(host);
  }

  void stop() override {}

 private:
  sn::WebhookSettings webhook_settings(slmhub::Host& host) {
    const auto& config = host.config();
    sn::WebhookSettings w;
    const auto auth = config.string("webhook.auth", "hmac");
    const auto secret = [&host](const char* name) { return host.secrets().get(name).value_or(""); };
    if (auth == "hmac") {
      w.auth = sn::WebhookSettings::Auth::hmac;
      // The key as ServiceNow's GlideCertificateEncryption.generateMac takes it: base64 text,
      // the same the instance's property holds; the HMAC key is what it decodes to.
      const std::string key = secret("servicenow_webhook_secret");
      try {
        w.hmac_secret = slmhub::base64_decode(key);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(
            "secret servicenow_webhook_secret: not base64 (" + std::string(e.what()) +
            "): it is the HMAC key as the instance's generateMac takes it, base64-encoded");
      }
      if (!key.empty() && w.hmac_secret.empty()) {
        throw std::invalid_argument("secret servicenow_webhook_secret: decodes to no bytes");
      }
    } else if (auth == "token") {
      w.auth = sn::WebhookSettings::Auth::token;
      w.token = secret("servicenow_webhook_token");
    } else if (auth == "basic") {
      w.auth = sn::WebhookSettings::Auth::basic;
      w.username = config.string("webhook.username");
      w.password = secret("servicenow_webhook_password");
    } else {
      bad_setting("webhook.auth", "must be hmac, token or basic, not '" + auth + "'");
    }
    webhook_ready_ =
        !(w.hmac_secret.empty() && w.token.empty() && (w.username.empty() || w.password.empty()));
    if (!webhook_ready_) {
      host.log().warning("the ServiceNow webhook refuses every call (503) until its " + auth +
                         " secret is set");
    }
    w.token_header = lower(config.string("webhook.token_header", "Authorization"));
    w.signature_header = lower(config.string("webhook.signature_header", "X-SN-Signature"));
    w.timestamp_header = lower(config.string("webhook.timestamp_header"));
    w.max_skew_seconds = config.integer("webhook.max_skew_seconds", 300);
    w.max_body_bytes = config.integer("webhook.max_body_bytes", 1048576);
    w.table_field = config.string("webhook.field.table", "table");
    w.sys_id_field = config.string("webhook.field.sys_id", "sys_id");
    w.mod_count_field = config.string("webhook.field.sys_mod_count", "sys_mod_count");
    w.updated_by_field = config.string("webhook.field.sys_updated_by", "sys_updated_by");
    w.updated_on_field = config.string("webhook.field.sys_updated_on", "sys_updated_on");
    w.tables = {"incident", "cmdb_ci_outage", "change_request"};
    return w;
  }

  void register_routes(slmhub::Host& host) {
    auto& http = host.http();
    const auto receive = [this, &host](const Request& req, std::string_view path_table) {
      if (!webhook_ready_) {
        throw slmhub::Problem(503, "Service Unavailable",
                              "the ServiceNow webhook has no secret configured");
      }
      sn::authenticate_webhook(webhook_, req, host.clock().now());
      const auto change = sn::parse_webhook(webhook_, req.body, path_table);
      const std::string outcome = sync_->receive(change, req.body);
      return Response::json(
          {{"status", outcome}, {"table", change.table}, {"sys_id", change.sys_id}},
          outcome == "accepted" ? 202 : 200);
    };
    http.add({"POST", "/api/v1/webhooks/servicenow", "",
              [receive](const Request& req) { return receive(req, {}); },
              "a change from a ServiceNow business rule or flow (own authentication: HMAC, "
              "token or basic); committed before the answer"});
    http.add({"POST", "/api/v1/webhooks/servicenow/{table}", "",
              [receive](const Request& req) { return receive(req, req.params.at("table")); },
              "the same, for a rule that does not send the table: the path names it"});
    http.add({"GET", "/api/v1/servicenow/status", "viewer",
              [this](const Request&) { return Response::json(sync_->status()); },
              "the ServiceNow sync: inbox, lag, last sweep, cursors, conflicts, errors"});
    http.add(
        {"GET", "/api/v1/servicenow/conflicts", "viewer",
         [this](const Request& req) {
           return Response::json({{"conflicts", sync_->conflicts(req.query_limit(100, 1000))}});
         },
         "fields both sides changed since the last sync, and which side won"});
  }

  sn::WebhookSettings webhook_;
  bool webhook_ready_ = false;
  std::unique_ptr<sn::Sync> sync_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<ServiceNowPlugin>(); }

}  // namespace

SLMHUB_PLUGIN(create)
