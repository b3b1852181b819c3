// The tech_alerts plugin: reads plugins.tech_alerts.*, loads and checks the templates, and
// registers the maintenance policy, the event subscription, the notices job, the routes and
// the two outbox senders (e-mail over SMTP, webhooks over HTTPS). docs/alerts.md.
#include <random>
#include <stdexcept>

#include "alerts.hpp"
#include "compose.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/plugin.hpp"
#include "smtp.hpp"
#include "webhook.hpp"

namespace {

using slmhub::alerts::Settings;
using slmhub::alerts::TechAlerts;

std::vector<slmhub::ContactRole> roles_of(const slmhub::Config& config, const std::string& key) {
  std::vector<slmhub::ContactRole> out;
  for (const auto& name : config.list(key)) {
    auto role = slmhub::parse_contact_role(name);
    if (!role) {
      throw std::invalid_argument("plugins.tech_alerts." + key + ": '" + name +
                                  "' is not a contact role (technical_primary, "
                                  "technical_secondary, billing, executive, security, outage)");
    }
    out.push_back(*role);
  }
  return out;
}

// The key of unsubscribe links: the secret when configured, else one made on first start and
// kept in the store, so links in mail already sent keep working across restarts.
std::string unsubscribe_key(slmhub::Host& host) {
  if (auto secret = host.secrets().get("tech_alerts_unsubscribe_key")) {
    // An empty or short key (an empty file, a variable set to "") would let anyone make the
    // link that unsubscribes a customer's contacts from outage notices.
    if (secret->size() < 16) {
      throw std::invalid_argument(
          "secret tech_alerts_unsubscribe_key has " + std::to_string(secret->size()) +
          " bytes; it needs 16 at least (or leave it unset: a key is made and kept in the store)");
    }
    return *secret;
  }
  std::random_device random;
  std::string fresh;
  for (int i = 0; i < 32; ++i) fresh += static_cast<char>(random() & 0xff);
  fresh = slmhub::hex_encode(fresh);
  std::string key;
  host.store().transact([&](slmhub::Tx& tx) {
    tx.exec(
        "INSERT INTO tech_alerts_keys(name, value) VALUES ('unsubscribe', ?) ON CONFLICT(name) "
        "DO NOTHING",
        {fresh});
    key = tx.query("SELECT value FROM tech_alerts_keys WHERE name = 'unsubscribe'").at(0).text(0);
  });
  return key;
}

class TechAlertsPlugin : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"tech_alerts", "0.1.0", slmhub::kPluginApi, {}};
  }

  std::vector<slmhub::ConfigKey> config_schema() const override {
    using T = slmhub::ConfigType;
    std::vector<slmhub::ConfigKey> keys{
        {"maintenance.violations", T::string, "reclassify",
         "a window that breaks a notice or hours rule: reclassify (accept as the category the "
         "facts imply, and flag it) or refuse"},
        {"lists.planned_outages", T::list, "", "addresses told of planned outages"},
        {"lists.planned_maintenance", T::list, "",
         "addresses told of planned and expedited non-disruptive maintenance"},
        {"lists.problems", T::list, "", "addresses told of emergencies, outages and restorations"},
        {"lists.announcements", T::list, "", "addresses told of SLA announcements"},
        {"roles.notices", T::list, "technical_primary,technical_secondary,outage",
         "contact roles of subscribed customers told of maintenance, outages and restorations"},
        {"roles.announcements", T::list, "executive",
         "contact roles of subscribed customers told of SLA announcements"},
        {"reminders.hours", T::list, "24",
         "reminders before a window starts, in hours (e.g. 72,24)"},
        {"notices.schedule", T::cron, "* * * * *",
         "when reminders and start/end notices are looked for (cron, UTC)"},
        {"public_url", T::string, "http://127.0.0.1:8080",
         "the server's address as recipients reach it (links, unsubscribe, calendar UIDs)"},
        {"provider_name", T::string, "slmhub", "the provider's name in messages and pages"},
        {"timezone", T::zone, "",
         "IANA zone of times in messages (default: the provider calendar's)"},
        {"templates_dir", T::string, "",
         "directory of <kind>.<channel>.<part>.mustache files overriding the built-in templates"},
        {"webhook.urls", T::list, "",
         "URLs every alert is posted to (the HMAC key is secret tech_alerts_webhook_secret)"},
        {"webhook.format", T::string, "json", "json, slack or teams"},
        {"webhook.ca_file", T::string, "",
         "CA bundle that verifies webhook receivers instead of the system's"},
        {"webhook.timeout_ms", T::integer, "10000", "time-out of one webhook delivery"},
        {"status.upcoming_days", T::integer, "60", "days of upcoming maintenance on /status"},
        {"status.recent_days", T::integer, "7", "days of restorations on /status"},
    };
    for (auto& key : slmhub::mail::smtp_config_keys(
             "SMTP server that sends alert e-mail; empty: alerts go to webhooks only",
             "tech_alerts_smtp_password")) {
      if (key.key == "smtp.from") key.help = "sender of alert e-mail (needed with smtp.host)";
      keys.push_back(std::move(key));
    }
    return keys;
  }

  void start(slmhub::Host& host) override {
    const slmhub::Config& config = host.config();
    host.store().migrate("tech_alerts", TechAlerts::migrations());
    Settings s;
    const std::string violations = config.string("maintenance.violations");
    if (violations == "refuse") {
      s.violations = Settings::Violations::refuse;
    } else if (violations != "reclassify") {
      throw std::invalid_argument(
          "plugins.tech_alerts.maintenance.violations must be reclassify or refuse, not '" +
          violations + "'");
    }
    for (const std::string list :
         {"planned_outages", "planned_maintenance", "problems", "announcements"}) {
      for (const auto& address : config.list("lists." + list)) {
        if (!slmhub::looks_like_email(address))
          throw std::invalid_argument("plugins.tech_alerts.lists." + list + ": '" + address +
                                      "' is not an e-mail address");
        s.lists[list].push_back(address);
      }
    }
    s.notice_roles = roles_of(config, "roles.notices");
    s.announcement_roles = roles_of(config, "roles.announcements");
    s.reminder_seconds.clear();
    for (const auto& h : config.list("reminders.hours")) {
      const auto hours = slmhub::parse_config_integer("reminders.hours", h);
      if (hours <= 0)
        throw std::invalid_argument("plugins.tech_alerts.reminders.hours must be > 0");
      s.reminder_seconds.push_back(hours * 3600);
    }
    // Nearest first, so the check in run_notices finds the latest reminder due.
    std::sort(s.reminder_seconds.begin(), s.reminder_seconds.end());
    s.public_url = config.string("public_url");
    while (s.public_url.ends_with('/')) s.public_url.pop_back();
    s.provider_name = config.string("provider_name");
    s.zone = config.string("timezone");  // a zone, checked by the host (ConfigType::zone)
    s.upcoming_days = config.integer("status.upcoming_days");
    s.recent_days = config.integer("status.recent_days");
    s.webhook_urls = config.list("webhook.urls");
    for (const auto& url : s.webhook_urls) {
      if (!url.starts_with("https://") && !url.starts_with("http://"))
        throw std::invalid_argument("plugins.tech_alerts.webhook.urls: '" + url +
                                    "' is not an http or https URL");
    }
    s.webhook_format = config.string("webhook.format");
    if (s.webhook_format != "json" && s.webhook_format != "slack" && s.webhook_format != "teams")
      throw std::invalid_argument(
          "plugins.tech_alerts.webhook.format must be json, slack or "
          "teams, not '" +
          s.webhook_format + "'");
    slmhub::alerts::WebhookSettings hook{
        host.secrets().get("tech_alerts_webhook_secret").value_or(""),
        config.string("webhook.ca_file"), config.integer("webhook.timeout_ms")};
    if (!s.webhook_urls.empty() && hook.secret.empty())
      host.log().warning(
          "webhooks are sent unsigned: secret tech_alerts_webhook_secret is not set");
    s.unsubscribe_key = unsubscribe_key(host);
    s.email = !config.string("smtp.host").empty();
    if (!s.email) host.log().info("smtp.host is not set: alerts are not sent by e-mail");

    auto templates = std::make_shared<const slmhub::alerts::Templates>(
        slmhub::alerts::builtin_templates(), config.string("templates_dir"),
        slmhub::alerts::alert_kinds(), slmhub::alerts::sample_context());
    const bool email = s.email;
    alerts_ = std::make_unique<TechAlerts>(host, std::move(s), templates);
    TechAlerts& alerts = *alerts_;

    if (email) register_email(host, alerts);
    const slmhub::Clock& clock = host.clock();
    host.outbox().register_sender(
        slmhub::alerts::kWebhookChannel,
        [hook, &clock](const slmhub::OutboxMessage& m) {
          auto headers =
              slmhub::alerts::signature_headers(hook.secret, slmhub::to_epoch(clock.now()), m.body);
          headers.emplace_back("X-Slmhub-Delivery", m.headers.value("X-Slmhub-Delivery", ""));
          slmhub::alerts::post_webhook(hook, m.destination, headers, m.body);
        },
        [&alerts](slmhub::Tx& tx, const slmhub::OutboxMessage& m, const slmhub::SendOutcome& o) {
          alerts.record_attempt(tx, m, o, "accepted");
        });

    host.catalog().set_maintenance_policy(
        [&alerts](slmhub::Tx& tx, const slmhub::MaintenanceContext& c, slmhub::MaintenanceWindow& w,
                  const slmhub::MaintenanceWindow* before) {
          alerts.check_maintenance(tx, c, w, before);
        });
    host.events().subscribe("notices",
                            {"maintenance.*", "interruption.recorded", "interruption.updated",
                             "interruption.resolved", "report.published"},
                            [&alerts](const slmhub::Event& e) { alerts.on_event(e); });
    host.scheduler().add(
        {"tech_alerts.notices", config.string("notices.schedule"), "UTC",
         "maintenance reminders and start/end notices",
         [&alerts](const slmhub::JobContext& job) { return alerts.run_notices(job.now); }});
    alerts.add_routes(host.http());
  }

  void stop() override { alerts_.reset(); }

 private:
  void register_email(slmhub::Host& host, TechAlerts& alerts) {
    const slmhub::Config& config = host.config();
    const auto smtp = slmhub::mail::smtp_settings_from_config(
        config, "tech_alerts", host.secrets().get("tech_alerts_smtp_password").value_or(""));
    const std::string from = config.string("smtp.from");
    if (!slmhub::mail::is_plain_address(from))
      throw std::invalid_argument(
          "plugins.tech_alerts.smtp.from must be an address when "
          "smtp.host is set, not '" +
          from + "'");
    auto client = std::make_shared<const slmhub::mail::SmtpClient>(smtp);
    const std::string from_name = config.string("smtp.from_name");
    const slmhub::Clock& clock = host.clock();
    host.outbox().register_sender(
        slmhub::alerts::kEmailChannel,
        [client, from, from_name, &clock](const slmhub::OutboxMessage& m,
                                          const slmhub::Meanwhile& meanwhile) {
          slmhub::mail::OutgoingMail mail;
          std::string bytes;
          try {
            std::tie(mail.body, mail.html_body) = slmhub::alerts::unpack_email_body(m.body);
            mail.from = from;
            mail.from_name = from_name;
            mail.to = {m.destination};
            mail.subject = m.subject;
            for (const auto& [name, value] : m.headers.items())
              mail.headers.emplace_back(name, value.get<std::string>());
            // One Message-ID per delivery (and resend), the same on every retry of it.
            mail.message_id = "alert." + slmhub::sha256_hex(m.dedupe_key).substr(0, 32) + "@" +
                              from.substr(from.find('@') + 1);
            mail.date = clock.now();
            bytes = slmhub::mail::compose(mail);
          } catch (const std::exception& e) {
            throw slmhub::PermanentFailure("alert e-mail to " + m.destination +
                                           " cannot be sent: " + e.what());
          }
          client->send(mail.to, from, bytes, meanwhile);
        },
        [&alerts, accepted = "accepted by " + client->settings().host](
            slmhub::Tx& tx, const slmhub::OutboxMessage& m, const slmhub::SendOutcome& o) {
          alerts.record_attempt(tx, m, o, accepted);
        });
  }

  std::unique_ptr<TechAlerts> alerts_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<TechAlertsPlugin>(); }

}  // namespace

SLMHUB_PLUGIN(create)
