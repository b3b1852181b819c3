#include "alerts.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include "rules.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::alerts {

const std::vector<std::string>& alert_kinds() {
  static const std::vector<std::string> kKinds{
      "sla_announcement", "planned_outage", "planned_maintenance", "expedited_maintenance",
      "emergency",        "outage",         "restoration"};
  return kKinds;
}

std::string kind_label(const std::string& kind) {
  static const std::map<std::string, std::string> kLabels{
      {"sla_announcement", "SLA announcement"},
      {"planned_outage", "Planned outage"},
      {"planned_maintenance", "Planned maintenance"},
      {"expedited_maintenance", "Expedited maintenance"},
      {"emergency", "Emergency maintenance"},
      {"outage", "Outage"},
      {"restoration", "Service restored"}};
  auto it = kLabels.find(kind);
  return it == kLabels.end() ? kind : it->second;
}

namespace {

// The mailing list each kind goes to (DOMAIN.md §8).
std::string list_of(const std::string& kind) {
  if (kind == "planned_outage") return "planned_outages";
  if (kind == "planned_maintenance" || kind == "expedited_maintenance")
    return "planned_maintenance";
  if (kind == "sla_announcement") return "announcements";
  return "problems";
}

}  // namespace

std::string alert_kind_of(MaintenanceCategory c) {
  switch (c) {
    case MaintenanceCategory::planned_outage:
      return "planned_outage";
    case MaintenanceCategory::planned_non_disruptive:
      return "planned_maintenance";
    case MaintenanceCategory::expedited_non_disruptive:
      return "expedited_maintenance";
    case MaintenanceCategory::emergency:
      return "emergency";
  }
  return "planned_maintenance";
}

std::string normalized_address(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

namespace {

std::string opt_text(const Row& r, std::size_t i) { return r.optional_text(i).value_or(""); }

Value opt_instant(const std::optional<Instant>& t) { return t ? Value{to_epoch(*t)} : Value{}; }

}  // namespace

TechAlerts::TechAlerts(Host& host, Settings settings, std::shared_ptr<const Templates> templates)
    : host_(host), settings_(std::move(settings)), templates_(std::move(templates)) {}

std::vector<Migration> TechAlerts::migrations() {
  return {{1, "alerts, deliveries, attempts, window state, notices, flags, opt-outs",
           "CREATE TABLE tech_alerts_alerts (id TEXT PRIMARY KEY, seq BIGINT NOT NULL UNIQUE, "
           "kind TEXT NOT NULL, title TEXT NOT NULL, summary TEXT NOT NULL, services TEXT NOT "
           "NULL, maintenance TEXT, interruption TEXT, refers_to TEXT, is_update INTEGER NOT "
           "NULL, is_cancellation INTEGER NOT NULL, sequence BIGINT NOT NULL, start_at BIGINT, "
           "end_at BIGINT, origin TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT "
           "NOT NULL, sent_at BIGINT);"
           "CREATE INDEX tech_alerts_alerts_maintenance ON tech_alerts_alerts(maintenance);"
           "CREATE INDEX tech_alerts_alerts_interruption ON tech_alerts_alerts(interruption);"
           "CREATE TABLE tech_alerts_deliveries (id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, "
           "channel TEXT NOT NULL, destination TEXT NOT NULL, reason TEXT NOT NULL, state TEXT "
           "NOT NULL, attempts BIGINT NOT NULL, resends BIGINT NOT NULL, last_error TEXT, "
           "updated_at BIGINT NOT NULL);"
           "CREATE INDEX tech_alerts_deliveries_alert ON tech_alerts_deliveries(alert_id);"
           "CREATE TABLE tech_alerts_attempts (delivery_id TEXT NOT NULL, at BIGINT NOT NULL, "
           "outcome TEXT NOT NULL, detail TEXT NOT NULL);"
           "CREATE INDEX tech_alerts_attempts_delivery ON tech_alerts_attempts(delivery_id);"
           "CREATE TABLE tech_alerts_windows (id TEXT PRIMARY KEY, service TEXT NOT NULL, "
           "category TEXT NOT NULL, status TEXT NOT NULL, start_at BIGINT NOT NULL, end_at "
           "BIGINT NOT NULL, sequence BIGINT NOT NULL, last_alert TEXT, updated_at BIGINT NOT "
           "NULL);"
           "CREATE TABLE tech_alerts_notices (window_id TEXT NOT NULL, notice TEXT NOT NULL, "
           "sequence BIGINT NOT NULL, alert_id TEXT NOT NULL, PRIMARY KEY (window_id, notice, "
           "sequence));"
           "CREATE TABLE tech_alerts_flags (window_id TEXT NOT NULL, rule TEXT NOT NULL, "
           "declared TEXT NOT NULL, applied TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT "
           "NULL, PRIMARY KEY (window_id, rule));"
           "CREATE TABLE tech_alerts_optouts (address TEXT PRIMARY KEY, at BIGINT NOT NULL);"
           "CREATE TABLE tech_alerts_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)"}};
}

// ---- maintenance rules --------------------------------------------------------------------

void TechAlerts::check_maintenance(Tx& tx, const MaintenanceContext& c, MaintenanceWindow& w,
                                   const MaintenanceWindow* before) {
  // What the caller declared for the stored window: its category, or the one the policy
  // re-classified (the flags keep both). A writer that sends its own category again (the
  // ServiceNow sync does on every update) must not undo the re-classification.
  std::optional<MaintenanceCategory> declared_before;
  if (before) {
    declared_before = before->category;
    const auto rows = tx.query(
        "SELECT declared, applied FROM tech_alerts_flags WHERE window_id = ? AND declared <> "
        "applied",
        {w.id});
    if (!rows.empty() && rows[0].text(1) == to_string(before->category))
      declared_before = parse_maintenance_category(rows[0].text(0));
  }
  const bool same_declaration = before && declared_before == w.category;
  const bool scheduling = w.status == MaintenanceStatus::scheduled && w.start > c.now;
  const bool revived = before && before->status != MaintenanceStatus::scheduled &&
                       w.status == MaintenanceStatus::scheduled;
  // Customers learn of an earlier start, a later end, another service, a revived window or
  // one that now takes the service down (declared disruptive where it was not) only now; a
  // window that shrank keeps the notice it had. The declaration is compared, not the stored
  // category, so that a writer sending its own category again announces nothing.
  const auto disruptive = [](MaintenanceCategory c) {
    return c == MaintenanceCategory::planned_outage || c == MaintenanceCategory::emergency;
  };
  const bool now_disruptive =
      before && disruptive(w.category) && !disruptive(declared_before.value_or(w.category));
  const bool news = !before || w.start < before->start || w.end > before->end ||
                    w.service != before->service || revived || now_disruptive;
  // An announcement older than the one on record (the ServiceNow sync sends the change's
  // creation time with every update) does not take that one back; and the one on record sent
  // back (a read-modify-write) does not announce news: news is announced now.
  if (before && w.announced_at && before->announced_at && *w.announced_at < *before->announced_at)
    w.announced_at = before->announced_at;
  if (before && news && scheduling && w.announced_at == before->announced_at) {
    w.announced_at.reset();
  }
  if (!w.announced_at && before && !(news && scheduling)) w.announced_at = before->announced_at;
  // Tech Alerts announces a window the moment it is stored as scheduling (also one recorded
  // before without an announcement).
  if (!w.announced_at && scheduling) w.announced_at = c.now;
  const bool moved = !before || before->start != w.start || before->end != w.end ||
                     !same_declaration || before->service != w.service ||
                     before->status != w.status;
  // Windows in the past are history being recorded, not scheduling: no rule applies.
  if (!scheduling || !moved) {
    if (same_declaration) w.category = before->category;
    return;
  }
  const Verdict verdict =
      check_window(w, c.service.environment, *w.announced_at, c.provider_calendar,
                   c.service_hours ? &*c.service_hours : nullptr);
  if (!verdict.breaches.empty() && settings_.violations == Settings::Violations::refuse) {
    std::vector<FieldError> errors;
    for (const auto& b : verdict.breaches) errors.push_back({b.field, b.rule + ": " + b.message});
    throw ValidationError(errors);
  }
  const std::string declared{to_string(w.category)};
  w.category = verdict.implied;
  const std::string applied{to_string(w.category)};
  tx.exec("DELETE FROM tech_alerts_flags WHERE window_id = ?", {w.id});
  auto flag = [&](const std::string& rule, const std::string& message) {
    tx.exec(
        "INSERT INTO tech_alerts_flags(window_id, rule, declared, applied, message, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        {w.id, rule, declared, applied, message, to_epoch(c.now)});
  };
  for (const auto& b : verdict.breaches) {
    flag(b.rule, b.message + (declared != applied ? "; re-classified as " + applied : ""));
  }
  if (w.category == MaintenanceCategory::planned_outage) {
    auto windows = c.other_windows;
    windows.push_back(w);
    const auto use = budget_use(c.service, c.zone, c.fiscal_year_start_month, c.provider_calendar,
                                c.service_hours ? &*c.service_hours : nullptr, windows, w.start);
    if (use.over()) {
      flag("budget.maintenance", "planned outages of " + c.service.id + " in fiscal year " +
                                     std::to_string(use.fiscal_year) + " come to " +
                                     describe_duration(use.used_seconds) + ", over its budget of " +
                                     describe_duration(use.budget_seconds) +
                                     ": the part beyond it counts as downtime");
    }
  }
  if (!verdict.breaches.empty()) {
    host_.log().warning("maintenance " + w.id + " flagged: " + verdict.breaches.front().message +
                        (declared != applied ? " (re-classified as " + applied + ")" : ""));
  }
}

// ---- alerts -------------------------------------------------------------------------------

std::string TechAlerts::service_name(const std::string& id) const {
  auto s = host_.catalog().service(id);
  return s && !s->name.empty() ? s->name : id;
}

const date::time_zone* TechAlerts::zone() const {
  if (!settings_.zone.empty()) return find_zone(settings_.zone);
  return host_.catalog().provider_calendar().zone();
}

std::string TechAlerts::local_text(Instant t) const {
  return date::format("%a %d %b %Y %H:%M %Z", date::make_zoned(zone(), t));
}

std::string TechAlerts::window_text(Instant start, Instant end) const {
  return alerts::window_text(start, end, zone());
}

std::string TechAlerts::unsubscribe_token(const std::string& address) const {
  return hex_encode(hmac_sha256(settings_.unsubscribe_key, normalized_address(address)))
      .substr(0, 32);
}

std::string TechAlerts::unsubscribe_url(const std::string& address) const {
  return settings_.public_url + "/alerts/unsubscribe?address=" + percent_encode(address) +
         "&token=" + unsubscribe_token(address);
}

Json TechAlerts::context(const Alert& a, const std::string& address) const {
  Json services = Json::array();
  for (const auto& id : a.services) {
    auto s = host_.catalog().service(id);
    services.push_back({{"id", id},
                        {"name", s ? s->name : id},
                        {"environment", s ? std::string(to_string(s->environment)) : ""}});
  }
  Json alert = {{"id", a.id},
                {"kind", a.kind},
                {"kind_label", kind_label(a.kind)},
                {"title", a.title},
                {"summary", a.summary},
                {"is_update", a.is_update},
                {"is_cancellation", a.is_cancellation},
                {"sequence", a.sequence},
                {"refers_to", a.refers_to},
                {"start", a.start ? format_instant(*a.start) : ""},
                {"end", a.end ? format_instant(*a.end) : ""},
                {"start_local", a.start ? local_text(*a.start) : ""},
                {"end_local", a.end ? local_text(*a.end) : ""},
                {"window", a.start && a.end ? window_text(*a.start, *a.end) : ""},
                {"maintenance", a.maintenance},
                {"interruption", a.interruption},
                {"sent_at", format_instant(a.sent_at.value_or(a.created_at))}};
  return {{"alert", alert},
          {"services", services},
          {"provider",
           {{"name", settings_.provider_name},
            {"status_url", settings_.public_url + "/status"},
            {"calendar_url", settings_.public_url + "/maintenance.ics"}}},
          {"recipient", {{"address", address}, {"unsubscribe_url", unsubscribe_url(address)}}}};
}

std::vector<TechAlerts::Recipient> TechAlerts::audience(const Alert& a) const {
  std::vector<Recipient> out;
  std::set<std::string> seen;
  std::set<std::string> opted_out;
  for (const auto& r : host_.store().query("SELECT address FROM tech_alerts_optouts"))
    opted_out.insert(r.text(0));
  // Opting out is a person's choice about their own address; a configured list is the
  // provider's, and is only taken off in the configuration.
  // An address that unsubscribed is kept, marked, so the alert's deliveries show who was
  // not told and why.
  auto add = [&](const std::string& address, const std::string& reason, bool list) {
    const std::string key = normalized_address(address);
    if (!seen.insert(key).second) return;
    out.push_back({address, reason, list, !list && opted_out.count(key) > 0});
  };
  const std::string list = list_of(a.kind);
  if (auto it = settings_.lists.find(list); it != settings_.lists.end()) {
    for (const auto& address : it->second) add(address, "list " + list, true);
  }
  const auto& roles =
      a.kind == "sla_announcement" ? settings_.announcement_roles : settings_.notice_roles;
  const std::set<std::string> services(a.services.begin(), a.services.end());
  // An SLA announcement naming no service is about the SLA itself: every customer is told.
  const bool every_service = a.kind == "sla_announcement" && services.empty();
  // Subscribed when the alert's window starts (or now): a subscription that ended before
  // the maintenance is not told about it.
  const Instant when = a.start.value_or(host_.clock().now());
  const Dataset data = host_.catalog().snapshot();
  for (const auto& customer : data.customers) {
    const bool subscribed = std::any_of(
        customer.subscriptions.begin(), customer.subscriptions.end(), [&](const Subscription& s) {
          return (every_service || services.count(s.service)) && (!s.start || *s.start <= when) &&
                 (!s.end || *s.end > when);
        });
    if (!subscribed) continue;
    for (const auto role : roles) {
      for (const auto& contact : customer.contacts) {
        if (contact.role == role)
          add(contact.email, "customer " + customer.id + " " + std::string(to_string(role)), false);
      }
    }
  }
  return out;
}

std::string TechAlerts::webhook_body(const Alert& a, const std::string& delivery) const {
  const std::string text = templates_->render(a.kind, "webhook", "text", context(a, ""));
  if (settings_.webhook_format == "slack") {
    // Slack reads <...> as links and mentions (<!channel>): text from an incident must stay
    // text (its message formatting escapes exactly &, < and >).
    std::string escaped;
    for (const char c : text) {
      if (c == '&') {
        escaped += "&amp;";
      } else if (c == '<') {
        escaped += "&lt;";
      } else if (c == '>') {
        escaped += "&gt;";
      } else {
        escaped += c;
      }
    }
    return Json{{"text", escaped}}.dump();
  }
  if (settings_.webhook_format == "teams") {
    return Json{{"@type", "MessageCard"},
                {"@context", "https://schema.org/extensions"},
                {"summary", a.title},
                {"title", kind_label(a.kind) + ": " + a.title},
                {"text", text}}
        .dump();
  }
  return Json{{"delivery", delivery}, {"alert", alert_json(a, false)}, {"text", text}}.dump();
}

TechAlerts::Alert TechAlerts::store_alert(Tx& tx, Alert a, bool draft) {
  auto seq = tx.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM tech_alerts_alerts");
  const std::int64_t n = seq.at(0).integer(0);
  std::string digits = std::to_string(n);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  a.id = "TA-" + digits;
  a.created_at = host_.clock().now();
  Json services = a.services;
  tx.exec(
      "INSERT INTO tech_alerts_alerts(id, seq, kind, title, summary, services, maintenance, "
      "interruption, refers_to, is_update, is_cancellation, sequence, start_at, end_at, origin, "
      "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {a.id, n, a.kind, a.title, a.summary, services.dump(), a.maintenance, a.interruption,
       a.refers_to, std::int64_t{a.is_update}, std::int64_t{a.is_cancellation}, a.sequence,
       opt_instant(a.start), opt_instant(a.end), a.origin, a.created_by, to_epoch(a.created_at)});
  host_.events().publish(tx, "alert.created", a.id, {{"kind", a.kind}, {"draft", draft}});
  if (!draft) send(tx, a);
  return a;
}

void TechAlerts::send(Tx& tx, Alert& a) {
  a.sent_at = host_.clock().now();
  const std::int64_t at = to_epoch(*a.sent_at);
  tx.exec("UPDATE tech_alerts_alerts SET sent_at = ? WHERE id = ?", {at, a.id});
  auto add_delivery = [&](const std::string& id, const std::string& channel,
                          const std::string& destination, const std::string& reason,
                          const char* state = "queued") {
    tx.exec(
        "INSERT INTO tech_alerts_deliveries(id, alert_id, channel, destination, reason, state, "
        "attempts, resends, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)",
        {id, a.id, channel, destination, reason, state, at});
  };
  std::size_t n = 0;
  const auto began = std::chrono::steady_clock::now();
  if (settings_.email) {
    const auto recipients = audience(a);
    const auto resolved = std::chrono::steady_clock::now();
    const Json shared = context(a, "");
    const RenderedEmail for_people = render_email(a, shared, true);
    const RenderedEmail for_lists = render_email(a, shared, false);
    std::size_t opted_out = 0;
    for (const auto& r : recipients) {
      const std::string delivery = a.id + "-e" + std::to_string(++n);
      if (r.opted_out) {
        add_delivery(delivery, "email", r.address, r.reason, "opted_out");
        ++opted_out;
        continue;
      }
      const OutboxMessage m = email_message(a, r.list ? for_lists : for_people, r.address, !r.list,
                                            delivery, "tech_alerts:" + delivery);
      add_delivery(delivery, "email", r.address, r.reason);
      host_.outbox().enqueue(tx, m);
    }
    const auto ms = [](auto d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    host_.log().info("alert " + a.id + ": " + std::to_string(recipients.size() - opted_out) +
                     " e-mail recipient(s)" +
                     (opted_out ? " (and " + std::to_string(opted_out) + " unsubscribed)" : "") +
                     " resolved in " + ms(resolved - began) + " ms, rendered and queued in " +
                     ms(std::chrono::steady_clock::now() - resolved) + " ms");
  }
  n = 0;
  for (const auto& url : settings_.webhook_urls) {
    const std::string delivery = a.id + "-w" + std::to_string(++n);
    const OutboxMessage m = webhook_message(a, url, delivery, "tech_alerts:" + delivery);
    add_delivery(delivery, "webhook", url, "webhook");
    host_.outbox().enqueue(tx, m);
  }
  host_.events().publish(tx, "alert.sent", a.id, {{"kind", a.kind}});
}

std::string pack_email_body(const std::string& text, const std::string& html) {
  return std::to_string(text.size()) + "\n" + text + html;
}

std::pair<std::string, std::string> unpack_email_body(const std::string& body) {
  const auto newline = body.find('\n');
  std::size_t length = 0;
  const char* end = body.data() + (newline == std::string::npos ? 0 : newline);
  const auto [ptr, ec] = std::from_chars(body.data(), end, length);
  if (newline == std::string::npos || ec != std::errc() || ptr != end ||
      length > body.size() - newline - 1)
    throw std::invalid_argument("not an alert e-mail body (length line missing or wrong)");
  return {body.substr(newline + 1, length), body.substr(newline + 1 + length)};
}

namespace {

// Stand-ins for the recipient's values while an alert's e-mail is rendered once for all of
// its recipients: control characters that no template, value or escaping produces.
constexpr std::string_view kAddressMark =
    "\x02"
    "address"
    "\x03";
constexpr std::string_view kUrlMark =
    "\x02"
    "unsubscribe"
    "\x03";

void replace_all(std::string& text, std::string_view mark, const std::string& value) {
  for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark, at + value.size()))
    text.replace(at, mark.size(), value);
}

}  // namespace

TechAlerts::RenderedEmail TechAlerts::render_email(const Alert& a, Json ctx,
                                                   bool unsubscribe) const {
  ctx["recipient"] = {{"address", kAddressMark},
                      {"unsubscribe_url", unsubscribe ? kUrlMark : std::string_view()}};
  return {templates_->render(a.kind, "email", "subject", ctx),
          templates_->render(a.kind, "email", "text", ctx),
          templates_->render(a.kind, "email", "html", ctx)};
}

OutboxMessage TechAlerts::email_message(const Alert& a, const RenderedEmail& rendered,
                                        const std::string& address, bool unsubscribe,
                                        const std::string& delivery,
                                        const std::string& dedupe_key) const {
  const std::string url = unsubscribe ? unsubscribe_url(address) : std::string();
  RenderedEmail e = rendered;
  for (std::string* part : {&e.subject, &e.text}) {
    replace_all(*part, kAddressMark, address);
    replace_all(*part, kUrlMark, url);
  }
  replace_all(e.html, kAddressMark, escape_html(address));
  replace_all(e.html, kUrlMark, escape_html(url));
  OutboxMessage m;
  m.channel = kEmailChannel;
  m.destination = address;
  m.subject = std::move(e.subject);
  m.body = pack_email_body(e.text, e.html);
  m.headers = {{"Auto-Submitted", "auto-generated"},
               {"X-Slmhub-Alert", a.id},
               {"X-Slmhub-Delivery", delivery}};
  if (unsubscribe) {
    m.headers["List-Unsubscribe"] = "<" + url + ">";
    m.headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click";
  }
  m.dedupe_key = dedupe_key;
  return m;
}

OutboxMessage TechAlerts::webhook_message(const Alert& a, const std::string& url,
                                          const std::string& delivery,
                                          const std::string& dedupe_key) const {
  OutboxMessage m;
  m.channel = kWebhookChannel;
  m.destination = url;
  m.subject = a.title;
  m.body = webhook_body(a, delivery);
  m.headers = {{"X-Slmhub-Delivery", delivery}};
  m.dedupe_key = dedupe_key;
  return m;
}

void TechAlerts::record_attempt(Tx& tx, const OutboxMessage& message, const SendOutcome& outcome,
                                const std::string& accepted) {
  const std::string delivery = message.headers.value("X-Slmhub-Delivery", "");
  if (delivery.empty()) return;  // not one of ours
  const std::int64_t at = to_epoch(host_.clock().now());
  const std::string state = outcome.delivered ? "sent" : outcome.dead ? "failed" : "retrying";
  tx.exec(
      "UPDATE tech_alerts_deliveries SET state = ?, attempts = attempts + 1, last_error = ?, "
      "updated_at = ? WHERE id = ?",
      {state, outcome.delivered ? Value{} : Value{outcome.error}, at, delivery});
  tx.exec("INSERT INTO tech_alerts_attempts(delivery_id, at, outcome, detail) VALUES (?, ?, ?, ?)",
          {delivery, at,
           outcome.delivered   ? "delivered"
           : outcome.permanent ? "refused"
                               : "failed",
           outcome.delivered ? accepted : outcome.error});
}

std::optional<TechAlerts::Alert> TechAlerts::find_alert(const std::string& id) const {
  auto rows = host_.store().query(
      "SELECT id, kind, title, summary, services, maintenance, interruption, refers_to, "
      "is_update, is_cancellation, sequence, start_at, end_at, origin, created_by, created_at, "
      "sent_at FROM tech_alerts_alerts WHERE id = ?",
      {id});
  if (rows.empty()) return std::nullopt;
  const Row& r = rows[0];
  Alert a;
  a.id = r.text(0);
  a.kind = r.text(1);
  a.title = r.text(2);
  a.summary = r.text(3);
  a.services = Json::parse(r.text(4)).get<std::vector<std::string>>();
  a.maintenance = opt_text(r, 5);
  a.interruption = opt_text(r, 6);
  a.refers_to = opt_text(r, 7);
  a.is_update = r.integer(8) != 0;
  a.is_cancellation = r.integer(9) != 0;
  a.sequence = r.integer(10);
  if (auto s = r.optional_integer(11)) a.start = from_epoch(*s);
  if (auto e = r.optional_integer(12)) a.end = from_epoch(*e);
  a.origin = r.text(13);
  a.created_by = r.text(14);
  a.created_at = from_epoch(r.integer(15));
  if (auto s = r.optional_integer(16)) a.sent_at = from_epoch(*s);
  return a;
}

Json TechAlerts::alert_json(const Alert& a, bool with_deliveries) const {
  Json j = {{"id", a.id},
            {"kind", a.kind},
            {"title", a.title},
            {"summary", a.summary},
            {"services", a.services},
            {"is_update", a.is_update},
            {"is_cancellation", a.is_cancellation},
            {"sequence", a.sequence},
            {"origin", a.origin},
            {"created_by", a.created_by},
            {"created_at", format_instant(a.created_at)},
            {"state", a.sent_at ? "sent" : "draft"}};
  if (!a.maintenance.empty()) j["maintenance"] = a.maintenance;
  if (!a.interruption.empty()) j["interruption"] = a.interruption;
  if (!a.refers_to.empty()) j["refers_to"] = a.refers_to;
  if (a.start) j["start"] = format_instant(*a.start);
  if (a.end) j["end"] = format_instant(*a.end);
  if (a.sent_at) j["sent_at"] = format_instant(*a.sent_at);
  if (with_deliveries) {
    Json counts = Json::object();
    for (const auto& r : host_.store().query(
             "SELECT channel, state, COUNT(*) FROM tech_alerts_deliveries WHERE alert_id = ? "
             "GROUP BY channel, state ORDER BY channel, state",
             {a.id}))
      counts[r.text(0)][r.text(1)] = r.integer(2);
    j["deliveries"] = counts;
  }
  return j;
}

Json TechAlerts::deliveries_json(const std::string& alert_id) const {
  Json out = Json::array();
  std::map<std::string, Json> attempts;
  for (const auto& r : host_.store().query(
           "SELECT t.delivery_id, t.at, t.outcome, t.detail FROM tech_alerts_attempts t JOIN "
           "tech_alerts_deliveries d ON d.id = t.delivery_id WHERE d.alert_id = ? ORDER BY "
           "t.at, t.outcome",
           {alert_id})) {
    attempts[r.text(0)].push_back({{"at", format_instant(from_epoch(r.integer(1)))},
                                   {"outcome", r.text(2)},
                                   {"detail", r.text(3)}});
  }
  for (const auto& r : host_.store().query(
           "SELECT id, channel, destination, reason, state, attempts, resends, last_error, "
           "updated_at FROM tech_alerts_deliveries WHERE alert_id = ? ORDER BY channel, id",
           {alert_id})) {
    Json d = {{"id", r.text(0)},
              {"channel", r.text(1)},
              {"destination", r.text(2)},
              {"reason", r.text(3)},
              {"state", r.text(4)},
              {"attempts", r.integer(5)},
              {"resends", r.integer(6)},
              {"updated_at", format_instant(from_epoch(r.integer(8)))},
              {"log", attempts.count(r.text(0)) ? attempts[r.text(0)] : Json::array()}};
    if (auto e = r.optional_text(7)) d["last_error"] = *e;
    out.push_back(std::move(d));
  }
  return out;
}

// ---- events -------------------------------------------------------------------------------

void TechAlerts::on_event(const Event& e) {
  if (e.type.starts_with("maintenance.")) {
    on_maintenance(e.subject);
  } else if (e.type == "interruption.recorded" || e.type == "interruption.updated") {
    on_interruption(e.subject, false);
  } else if (e.type == "interruption.resolved") {
    on_interruption(e.subject, true);
  } else if (e.type == "report.published") {
    on_report(e.subject);
  }
}

void TechAlerts::on_maintenance(const std::string& id) {
  const auto window = host_.catalog().maintenance(id);
  const Instant now = host_.clock().now();
  host_.store().transact([&](Tx& tx) {
    auto rows = tx.query(
        "SELECT category, status, start_at, end_at, sequence, last_alert, service FROM "
        "tech_alerts_windows WHERE id = ?",
        {id});
    const bool known = !rows.empty();
    const bool gone = !window || window->status == MaintenanceStatus::cancelled ||
                      window->status == MaintenanceStatus::skipped;
    Alert a;
    a.maintenance = id;
    a.created_by = actor_.id;
    if (gone) {
      // Only what was announced and is still ahead is cancelled; a deleted window counts as
      // cancelled. A window recorded as history (never announced) or one already over is
      // marked, and nobody is told of a notice they never had or a window that has passed.
      if (!known || rows[0].text(1) == "cancelled") return;
      if (rows[0].is_null(5) || rows[0].integer(3) <= to_epoch(now)) {
        tx.exec("UPDATE tech_alerts_windows SET status = 'cancelled', updated_at = ? WHERE id = ?",
                {to_epoch(now), id});
        return;
      }
      a.kind = alert_kind_of(
          parse_maintenance_category(rows[0].text(0)).value_or(MaintenanceCategory::emergency));
      a.services = {rows[0].text(6)};
      a.start = from_epoch(rows[0].integer(2));
      a.end = from_epoch(rows[0].integer(3));
      a.sequence = rows[0].integer(4) + 1;
      a.refers_to = opt_text(rows[0], 5);
      a.is_cancellation = true;
      a.origin = "maintenance.cancelled";
      a.title = id + " on " + service_name(a.services.front());
      a.summary = "The maintenance " + id + " planned for " + window_text(*a.start, *a.end) +
                  " is cancelled.";
      a = store_alert(tx, a, false);
      tx.exec(
          "UPDATE tech_alerts_windows SET status = 'cancelled', sequence = ?, last_alert = ?, "
          "updated_at = ? WHERE id = ?",
          {a.sequence, a.id, to_epoch(now), id});
      return;
    }
    const std::string category{to_string(window->category)};
    // Complete is what our own end notice made it: a window that has ended stays so, or a
    // change recorded after its end (a ServiceNow change still in review maps to
    // `scheduled`) would have the notices job tell everyone it completed again.
    const std::string status = known && rows[0].text(1) == "complete" && window->end <= now
                                   ? std::string("complete")
                                   : std::string(to_string(window->status));
    if (known) {
      // A window scheduled again after its cancellation is announced again.
      const bool changed = rows[0].text(1) == "cancelled" || rows[0].text(0) != category ||
                           rows[0].integer(2) != to_epoch(window->start) ||
                           rows[0].integer(3) != to_epoch(window->end) ||
                           rows[0].text(6) != window->service;
      if (!changed) {
        tx.exec("UPDATE tech_alerts_windows SET status = ?, updated_at = ? WHERE id = ?",
                {status, to_epoch(now), id});
        return;
      }
      if (window->end <= now) {
        // History corrected (the work overran): nobody is told, but the calendar feed serves
        // the new times with a higher SEQUENCE (RFC 5545 §3.8.7.4), or clients keep the old.
        tx.exec(
            "UPDATE tech_alerts_windows SET service = ?, category = ?, status = ?, start_at = ?, "
            "end_at = ?, sequence = sequence + 1, updated_at = ? WHERE id = ?",
            {window->service, category, status, to_epoch(window->start), to_epoch(window->end),
             to_epoch(now), id});
        return;
      }
      a.is_update = true;
      a.sequence = rows[0].integer(4) + 1;
      a.refers_to = opt_text(rows[0], 5);
      a.origin = "maintenance.changed";
    } else {
      a.origin = "maintenance.scheduled";
    }
    const bool history = window->end <= now;
    if (!history) {
      a.kind = alert_kind_of(window->category);
      a.services = {window->service};
      // Moved to another service: its former audience hears of the move too.
      if (known && rows[0].text(6) != window->service) a.services.push_back(rows[0].text(6));
      a.start = window->start;
      a.end = window->end;
      a.title = id + " on " + service_name(window->service);
      a.summary = kind_label(a.kind) + " of " + window->service + ", " +
                  window_text(window->start, window->end) + ".";
      a = store_alert(tx, a, false);
    }
    tx.exec(
        "INSERT INTO tech_alerts_windows(id, service, category, status, start_at, end_at, "
        "sequence, last_alert, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
        "UPDATE SET service = excluded.service, category = excluded.category, status = "
        "excluded.status, start_at = excluded.start_at, end_at = excluded.end_at, sequence = "
        "excluded.sequence, last_alert = excluded.last_alert, updated_at = excluded.updated_at",
        {id, window->service, category, status, to_epoch(window->start), to_epoch(window->end),
         a.sequence, history ? Value{} : Value{a.id}, to_epoch(now)});
  });
}

void TechAlerts::on_interruption(const std::string& id, bool resolved) {
  const auto item = host_.catalog().interruption(id);
  if (!item || item->type != InterruptionType::outage) return;
  const Instant now = host_.clock().now();
  host_.store().transact([&](Tx& tx) {
    // Sent ones only: a draft told nobody, and must not hold back the notice that does.
    auto sent = tx.query(
        "SELECT id, kind FROM tech_alerts_alerts WHERE interruption = ? AND kind IN ('outage', "
        "'restoration') AND sent_at IS NOT NULL ORDER BY seq",
        {id});
    std::string outage_alert;
    for (const auto& r : sent) {
      if (r.text(1) == "restoration") return;  // told already
      outage_alert = r.text(0);
    }
    // An import of last year's incidents is not news: an outage nobody was told about is
    // announced only while open or within a day of its end. One that was announced always
    // gets its restoration, however late it is recorded.
    if (outage_alert.empty() && item->end && *item->end < now - std::chrono::hours(24)) return;
    Alert a;
    a.interruption = id;
    a.services = {item->service};
    a.start = item->start;
    a.created_by = actor_.id;
    const std::string what = item->description.value_or(item->service + " is unavailable");
    if (!item->end) {
      if (!outage_alert.empty() || resolved) return;
      a.kind = "outage";
      a.origin = "interruption.recorded";
      a.title = id + " on " + service_name(item->service);
      a.summary = what + ". Since " + local_text(item->start) + ".";
    } else {
      a.kind = "restoration";
      a.end = item->end;
      a.refers_to = outage_alert;
      a.origin = "interruption.resolved";
      a.title = id + " on " + service_name(item->service);
      a.summary = what + ". Service was restored at " + local_text(*item->end) +
                  " after an interruption from " + local_text(item->start) + ".";
    }
    store_alert(tx, a, false);
  });
}

void TechAlerts::on_report(const std::string& month) {
  host_.store().transact([&](Tx& tx) {
    if (!tx.query("SELECT 1 FROM tech_alerts_alerts WHERE kind = 'sla_announcement' AND origin = "
                  "? ",
                  {"report.published " + month})
             .empty())
      return;
    Alert a;
    a.kind = "sla_announcement";
    a.origin = "report.published " + month;
    a.created_by = actor_.id;
    const Dataset data = host_.catalog().snapshot();
    for (const auto& s : data.services) a.services.push_back(s.id);
    a.title = "Service Availability Report for " + month + " published";
    a.summary = "The Service Availability Report for " + month +
                " is published: " + settings_.public_url + "/reports/availability/" + month + ".";
    store_alert(tx, a, false);
  });
}

std::string TechAlerts::run_notices(Instant now) {
  int sent = 0;
  // A window closed in the catalogue ('complete': the work finished early, or the change was
  // closed) before its end notice went out is read too: those told it started hear it is done.
  auto windows = host_.store().query(
      "SELECT w.id, w.service, w.category, w.start_at, w.end_at, w.sequence, w.last_alert, "
      "a.created_at, w.status FROM tech_alerts_windows w JOIN tech_alerts_alerts a ON a.id = "
      "w.last_alert WHERE w.status IN ('scheduled', 'complete') AND w.end_at > ?",
      {to_epoch(now) - 7 * 86400});
  for (const auto& w : windows) {
    const std::string id = w.text(0);
    const Instant start = from_epoch(w.integer(3));
    const Instant end = from_epoch(w.integer(4));
    const std::int64_t sequence = w.integer(5);
    const bool closed = w.text(8) == "complete";
    // The notice due now, the latest one only: after a long stop nobody wants a reminder for
    // a window that is already over.
    std::string notice;
    std::string title;
    Instant due{};
    if (closed) {
      notice = "end";
      title = "Complete: ";
      due = now;
    } else if (now >= end) {
      notice = "end";
      title = "Complete: ";
      due = end;
    } else if (now >= start) {
      notice = "start";
      title = "Started: ";
      due = start;
    } else {
      for (auto r : settings_.reminder_seconds) {
        if (now >= start - std::chrono::seconds(r)) {
          notice = "reminder " + std::to_string(r);
          title = "Reminder: ";
          due = start - std::chrono::seconds(r);
          break;
        }
      }
    }
    // A notice that fell due before the window was (last) announced would repeat what
    // people were just told: "starts in 23 hours" a minute after "starts tomorrow at 2".
    if (notice.empty() || due <= from_epoch(w.integer(7))) continue;
    bool told = false;
    host_.store().transact([&](Tx& tx) {
      told = false;
      // The window as read above, still: sending to thousands takes a while, and a window
      // cancelled or moved meanwhile (a higher sequence) must not be announced as it was.
      if (tx.query("SELECT 1 FROM tech_alerts_windows WHERE id = ? AND status = ? AND "
                   "sequence = ?",
                   {id, w.text(8), sequence})
              .empty())
        return;
      if (closed) {
        // Once per window, and only when it was told it started: a window corrected after
        // its end (a higher sequence) has had its "Complete" already.
        const auto notices = tx.query(
            "SELECT notice FROM tech_alerts_notices WHERE window_id = ? AND notice IN "
            "('start', 'end')",
            {id});
        const auto has = [&](const char* n) {
          return std::any_of(notices.begin(), notices.end(),
                             [&](const auto& row) { return row.text(0) == n; });
        };
        if (!has("start") || has("end")) return;
      } else if (!tx.query("SELECT 1 FROM tech_alerts_notices WHERE window_id = ? AND notice = ? "
                           "AND sequence = ?",
                           {id, notice, sequence})
                      .empty()) {
        return;
      }
      Alert a;
      a.kind = alert_kind_of(
          parse_maintenance_category(w.text(2)).value_or(MaintenanceCategory::emergency));
      a.maintenance = id;
      a.services = {w.text(1)};
      a.start = start;
      a.end = end;
      a.sequence = sequence;
      a.refers_to = opt_text(w, 6);
      a.origin = "notice " + notice;
      a.created_by = actor_.id;
      a.title = title + id + " on " + service_name(w.text(1));
      a.summary = notice == "end" ? "The maintenance " + id + " is complete."
                  : notice == "start"
                      ? "The maintenance " + id + " has started; it is planned to end at " +
                            local_text(end) + "."
                      : "Reminder: " + kind_label(a.kind) + " of " + w.text(1) + ", " +
                            window_text(start, end) + ".";
      a = store_alert(tx, a, false);
      tx.exec(
          "INSERT INTO tech_alerts_notices(window_id, notice, sequence, alert_id) VALUES (?, ?, "
          "?, ?)",
          {id, notice, sequence, a.id});
      if (notice == "end" && !closed)
        tx.exec("UPDATE tech_alerts_windows SET status = 'complete' WHERE id = ?", {id});
      told = true;
    });
    if (told) ++sent;
  }
  return std::to_string(sent) + " notice(s) sent";
}

}  // namespace slmhub::alerts
