// Tech Alerts (DOMAIN.md §8): the maintenance notice rules applied to every maintenance write,
// alerts created by hand or from events, their audiences resolved when they are sent, one
// outbox message per recipient and channel with its delivery state, reminders and start/end
// notices, and the public status page, maintenance calendar and feed. docs/alerts.md is the
// user's guide to all of it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pages.hpp"
#include "slmhub/plugin.hpp"
#include "templates.hpp"

namespace slmhub::alerts {

// The kinds of alert, in the order the docs list them.
const std::vector<std::string>& alert_kinds();
// "Planned outage" for "planned_outage".
std::string kind_label(const std::string& kind);
// The alert that announces a window of this category.
std::string alert_kind_of(MaintenanceCategory category);
// An address as opt-outs and deduplication compare it: lower case.
std::string normalized_address(std::string address);

struct Settings {
  // What a window that breaks a notice or hours rule gets: accepted as the category the facts
  // imply and flagged, or refused with the rule.
  enum class Violations { reclassify, refuse } violations = Violations::reclassify;
  // Mailing lists by name: planned_outages, planned_maintenance, problems, announcements.
  std::map<std::string, std::vector<std::string>> lists;
  std::vector<ContactRole> notice_roles{ContactRole::technical_primary,
                                        ContactRole::technical_secondary, ContactRole::outage};
  std::vector<ContactRole> announcement_roles{ContactRole::executive};
  std::vector<std::int64_t> reminder_seconds{24 * 3600};  // before a window starts
  std::string public_url = "http://127.0.0.1:8080";       // links in messages and feeds
  std::string provider_name = "slmhub";
  std::string zone;   // IANA zone of times in messages; "" = the provider calendar's
  bool email = true;  // an SMTP sender is configured
  std::vector<std::string> webhook_urls;
  std::string webhook_format = "json";  // json, slack or teams
  std::int64_t upcoming_days = 60;      // status page: maintenance shown ahead
  std::int64_t recent_days = 7;         // status page: restorations shown back
  std::string unsubscribe_key;          // HMAC key of unsubscribe links
};

// The channels' outbox names: this plugin's own senders, so each attempt is logged per
// recipient (the shared "email" channel keeps no per-recipient state).
inline constexpr const char* kEmailChannel = "tech_alerts.email";
inline constexpr const char* kWebhookChannel = "tech_alerts.webhook";

// The body of a kEmailChannel message: the text part's length in decimal, a line break, the
// text part, the HTML part. Not JSON: 10,000 of them are written per alert, and escaping
// the HTML into a JSON string was a tenth of that time.
std::string pack_email_body(const std::string& text, const std::string& html);
// {text, html}; std::invalid_argument for a body not made by pack_email_body.
std::pair<std::string, std::string> unpack_email_body(const std::string& body);

class TechAlerts {
 public:
  // One Tech Alert as stored; `sequence` counts the changes of the window it is about (the
  // calendar's SEQUENCE), `refers_to` is the alert an update, cancellation or restoration
  // follows.
  struct Alert {
    std::string id;
    std::string kind;
    std::string title;
    std::string summary;
    std::vector<std::string> services;
    std::string maintenance;
    std::string interruption;
    std::string refers_to;
    bool is_update = false;
    bool is_cancellation = false;
    std::int64_t sequence = 0;
    std::optional<Instant> start;
    std::optional<Instant> end;
    std::string origin = "manual";
    std::string created_by;
    Instant created_at{};
    std::optional<Instant> sent_at;
  };

  TechAlerts(Host& host, Settings settings, std::shared_ptr<const Templates> templates);

  static std::vector<Migration> migrations();

  // Catalog::set_maintenance_policy: the notice and hours rules, the budget warning.
  void check_maintenance(Tx& tx, const MaintenanceContext& context, MaintenanceWindow& window,
                         const MaintenanceWindow* before);
  // maintenance.*, interruption.recorded / resolved, report.published.
  void on_event(const Event& event);
  // Reminders before windows start, notices at start and end; one line for the job log.
  std::string run_notices(Instant now);

  void add_routes(HttpRoutes& routes);

  // The outbox senders' delivery log, written in the outbox's transaction that records the
  // attempt (SendRecorder): the delivery's state and one attempt row with the outcome and
  // either the error or `accepted` (what the receiving server said).
  void record_attempt(Tx& tx, const OutboxMessage& message, const SendOutcome& outcome,
                      const std::string& accepted);

 private:
  struct Recipient {
    std::string address;
    std::string reason;      // "list planned_outages", "customer acme technical_primary"
    bool list = false;       // a configured list: no unsubscribe link, opt-outs do not apply
    bool opted_out = false;  // unsubscribed: recorded as a delivery, never sent
  };

  Json create_from_request(const Request& req);
  Alert read_alert_body(const Json& body);
  // Stores `alert` with the next id and, unless `draft`, sends it: all in `tx`.
  Alert store_alert(Tx& tx, Alert alert, bool draft);
  void send(Tx& tx, Alert& alert);
  std::vector<Recipient> audience(const Alert& alert) const;
  Json context(const Alert& alert, const std::string& address) const;
  std::string unsubscribe_url(const std::string& address) const;
  std::string unsubscribe_token(const std::string& address) const;
  std::string webhook_body(const Alert& alert, const std::string& delivery) const;
  // An alert's e-mail rendered once for all its recipients, with stand-ins where the
  // recipient's address and unsubscribe link go (`context` from context()).
  struct RenderedEmail {
    std::string subject, text, html;
  };
  // `unsubscribe`: for a person (with an unsubscribe link), not a configured list.
  RenderedEmail render_email(const Alert& alert, Json context, bool unsubscribe) const;
  // One recipient's outbox message: `rendered` with that recipient's values put in (escaped
  // in the HTML part); List-Unsubscribe headers when `unsubscribe`.
  OutboxMessage email_message(const Alert& alert, const RenderedEmail& rendered,
                              const std::string& address, bool unsubscribe,
                              const std::string& delivery, const std::string& dedupe_key) const;
  OutboxMessage webhook_message(const Alert& alert, const std::string& url,
                                const std::string& delivery, const std::string& dedupe_key) const;

  std::optional<Alert> find_alert(const std::string& id) const;
  Json alert_json(const Alert& alert, bool with_deliveries) const;
  Json deliveries_json(const std::string& alert_id) const;

  void on_maintenance(const std::string& id);
  void on_interruption(const std::string& id, bool resolved);
  void on_report(const std::string& month);

  StatusPage status_page(Instant now) const;
  std::vector<CalendarEvent> calendar_events(Instant now) const;
  std::string local_text(Instant t) const;
  std::string window_text(Instant start, Instant end) const;
  const date::time_zone* zone() const;
  std::string service_name(const std::string& id) const;

  Host& host_;
  Settings settings_;
  std::shared_ptr<const Templates> templates_;
  Actor actor_{"system:tech_alerts"};
};

}  // namespace slmhub::alerts
