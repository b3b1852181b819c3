// The HTTP side of Tech Alerts: the alerts API, previews, deliveries and resends, the
// maintenance budget and flags, and the public pages (status, calendar, feed, unsubscribe).
#include <algorithm>

#include "alerts.hpp"
#include "rules.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::alerts {
namespace {

constexpr std::int64_t kPageLimit = 500;

Response page(const std::string& title, const std::string& body, int status = 200) {
  return Response::text(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" +
          escape_html(title) +
          "</title></head><body style=\"font-family:sans-serif;max-width:40em;"
          "margin:2em auto;padding:0 1em\">" +
          body + "</body></html>",
      "text/html; charset=utf-8", status);
}

}  // namespace

TechAlerts::Alert TechAlerts::read_alert_body(const Json& body) {
  std::vector<FieldError> errors;
  ObjectReader in(body, "$", errors);
  Alert a;
  a.kind = in.required_string("kind");
  const auto& kinds = alert_kinds();
  if (!a.kind.empty() && std::find(kinds.begin(), kinds.end(), a.kind) == kinds.end()) {
    std::string allowed;
    for (const auto& k : kinds) allowed += (allowed.empty() ? "" : ", ") + k;
    in.error("kind", "'" + a.kind + "' is not a kind of alert (" + allowed + ")");
  }
  a.title = in.required_string("title");
  a.summary = in.optional_string("summary").value_or("");
  a.services = in.optional_string_list("services");
  for (std::size_t i = 0; i < a.services.size(); ++i) {
    if (!host_.catalog().service(a.services[i]))
      errors.push_back(
          {"$.services[" + std::to_string(i) + "]", "unknown service '" + a.services[i] + "'"});
  }
  if (a.services.empty() && a.kind != "sla_announcement")
    in.error("services", "name at least one affected service");
  a.start = in.optional_instant("start");
  a.end = in.optional_instant("end");
  if (a.start && a.end && *a.end <= *a.start) in.error("end", "must be after start");
  a.maintenance = in.optional_string("maintenance").value_or("");
  a.interruption = in.optional_string("interruption").value_or("");
  a.refers_to = in.optional_string("refers_to").value_or("");
  if (!a.refers_to.empty() && !find_alert(a.refers_to))
    in.error("refers_to", "unknown alert '" + a.refers_to + "'");
  in.optional_bool("draft");
  in.finish();
  throw_if_errors(errors);
  return a;
}

Json TechAlerts::create_from_request(const Request& req) {
  const Json body = req.json();
  Alert a = read_alert_body(body);
  const bool draft = body.is_object() && body.value("draft", false);
  a.created_by = "token:" + req.principal.id;
  Alert stored;
  host_.store().transact([&](Tx& tx) { stored = store_alert(tx, a, draft); });
  return alert_json(stored, true);
}

StatusPage TechAlerts::status_page(Instant now) const {
  const Dataset data = host_.catalog().snapshot();
  StatusPage p;
  p.provider_name = settings_.provider_name;
  p.generated = now;
  p.zone = zone()->name();
  p.calendar_url = settings_.public_url + "/maintenance.ics";
  p.feed_url = settings_.public_url + "/alerts.atom";
  p.json_url = settings_.public_url + "/status.json";
  std::map<std::string, std::size_t> index;
  for (const auto& s : data.services) {
    index[s.id] = p.services.size();
    p.services.push_back({s.id, s.name, std::string(to_string(s.environment)), "operational", ""});
  }
  auto raise = [&](const std::string& service, const std::string& state,
                   const std::string& detail) {
    static const std::vector<std::string> kOrder{"operational", "degraded", "maintenance",
                                                 "outage"};
    auto it = index.find(service);
    if (it == index.end()) return;
    auto& s = p.services[it->second];
    auto rank = [&](const std::string& x) { return std::find(kOrder.begin(), kOrder.end(), x); };
    if (rank(state) > rank(s.state)) {
      s.state = state;
      s.detail = detail;
    }
  };
  const Instant recent = now - std::chrono::hours(24 * settings_.recent_days);
  for (const auto& i : data.interruptions) {
    if (i.start > now) continue;
    const std::string title = i.description.value_or(std::string(to_string(i.type)));
    if (!i.end || *i.end > now) {
      p.open_interruptions.push_back(
          {i.id, i.service, title, std::string(to_string(i.type)), i.start, std::nullopt, ""});
      raise(i.service, i.type == InterruptionType::outage ? "outage" : "degraded",
            i.id + " since " + local_text(i.start));
    } else if (*i.end >= recent && i.type == InterruptionType::outage) {
      p.recent_restorations.push_back({i.id, i.service, title, "restoration", i.start, i.end, ""});
    }
  }
  const Instant ahead = now + std::chrono::hours(24 * settings_.upcoming_days);
  for (const auto& w : data.maintenance) {
    if (w.status != MaintenanceStatus::scheduled || w.end <= now || w.start > ahead) continue;
    const std::string kind = std::string(to_string(w.category));
    p.upcoming_maintenance.push_back({w.id, w.service,
                                      std::string(kind_label(alert_kind_of(w.category))), kind,
                                      w.start, w.end, ""});
    const bool disruptive = w.category == MaintenanceCategory::planned_outage ||
                            w.category == MaintenanceCategory::emergency;
    if (w.start <= now && disruptive)
      raise(w.service, "maintenance", w.id + " until " + local_text(w.end));
  }
  auto by_start = [](const StatusItem& a, const StatusItem& b) {
    return std::tie(a.start, a.id) < std::tie(b.start, b.id);
  };
  std::sort(p.open_interruptions.begin(), p.open_interruptions.end(), by_start);
  std::sort(p.upcoming_maintenance.begin(), p.upcoming_maintenance.end(), by_start);
  std::sort(p.recent_restorations.begin(), p.recent_restorations.end(),
            [](const StatusItem& a, const StatusItem& b) { return *a.end > *b.end; });
  return p;
}

std::vector<CalendarEvent> TechAlerts::calendar_events(Instant now) const {
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> tracked;  // sequence, updated
  for (const auto& r :
       host_.store().query("SELECT id, sequence, updated_at FROM tech_alerts_windows"))
    tracked[r.text(0)] = {r.integer(1), r.integer(2)};
  std::string domain = settings_.public_url;
  if (auto p = domain.find("://"); p != std::string::npos) domain = domain.substr(p + 3);
  domain = domain.substr(0, domain.find_first_of(":/"));
  std::vector<CalendarEvent> out;
  const Instant since = now - std::chrono::hours(24 * 365);
  const Dataset data = host_.catalog().snapshot();
  for (const auto& w : data.maintenance) {
    if (w.end < since) continue;
    CalendarEvent e;
    e.uid = w.id + "@" + domain;
    auto t = tracked.find(w.id);
    e.sequence = t == tracked.end() ? 0 : static_cast<int>(t->second.first);
    e.stamp = t == tracked.end() ? now : from_epoch(t->second.second);
    e.summary =
        std::string(kind_label(alert_kind_of(w.category))) + ": " + w.service + " (" + w.id + ")";
    e.description = std::string(kind_label(alert_kind_of(w.category))) + " of " + w.service + ", " +
                    window_text(w.start, w.end) + ". Change " + w.id + ".";
    e.start = w.start;
    e.end = w.end;
    e.cancelled =
        w.status == MaintenanceStatus::cancelled || w.status == MaintenanceStatus::skipped;
    e.categories = {std::string(to_string(w.category)), w.service};
    e.url = settings_.public_url + "/status";
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const CalendarEvent& a, const CalendarEvent& b) {
    return std::tie(a.start, a.uid) < std::tie(b.start, b.uid);
  });
  return out;
}

void TechAlerts::add_routes(HttpRoutes& routes) {
  routes.add({"POST", "/api/v1/alerts", "operator",
              [this](const Request& req) {
                Json j = create_from_request(req);
                auto r = Response::json(j, 201);
                r.headers.emplace_back("Location", "/api/v1/alerts/" + j["id"].get<std::string>());
                return r;
              },
              "create a Tech Alert and send it to its audience (draft: true keeps it unsent)"});
  routes.add({"GET", "/api/v1/alerts", "viewer",
              [this](const Request& req) {
                const auto limit = req.query_limit(100, kPageLimit);
                const std::string kind = req.query_param("kind");
                Json items = Json::array();
                auto rows = kind.empty()
                                ? host_.store().query(
                                      "SELECT id FROM tech_alerts_alerts ORDER BY seq DESC LIMIT ?",
                                      {limit})
                                : host_.store().query(
                                      "SELECT id FROM tech_alerts_alerts WHERE kind = ? ORDER BY "
                                      "seq DESC LIMIT ?",
                                      {kind, limit});
                for (const auto& r : rows) {
                  if (auto a = find_alert(r.text(0))) items.push_back(alert_json(*a, false));
                }
                return Response::json({{"alerts", items}});
              },
              "alerts, newest first (?kind=, ?limit=)"});
  routes.add({"GET", "/api/v1/alerts/{id}", "viewer",
              [this](const Request& req) {
                auto a = find_alert(req.params.at("id"));
                if (!a) throw NotFound("no alert '" + req.params.at("id") + "'");
                return Response::json(alert_json(*a, true));
              },
              "one alert with its delivery counts by channel and state"});
  routes.add({"POST", "/api/v1/alerts/{id}/send", "operator",
              [this](const Request& req) {
                const std::string id = req.params.at("id");
                Json out;
                host_.store().transact([&](Tx& tx) {
                  auto a = find_alert(id);
                  if (!a) throw NotFound("no alert '" + id + "'");
                  if (a->sent_at)
                    throw Conflict("alert " + id + " was sent at " + format_instant(*a->sent_at));
                  send(tx, *a);
                  out = alert_json(*a, false);
                });
                return Response::json(out);
              },
              "send a draft alert to the audience resolved now"});
  routes.add({"GET", "/api/v1/alerts/{id}/deliveries", "operator",
              [this](const Request& req) {
                if (!find_alert(req.params.at("id")))
                  throw NotFound("no alert '" + req.params.at("id") + "'");
                return Response::json({{"deliveries", deliveries_json(req.params.at("id"))}});
              },
              "every recipient of an alert with its delivery state and attempt log"});
  routes.add(
      {"POST", "/api/v1/alerts/{id}/deliveries/{delivery}/resend", "operator",
       [this](const Request& req) {
         const std::string id = req.params.at("id");
         const std::string delivery = req.params.at("delivery");
         auto a = find_alert(id);
         if (!a) throw NotFound("no alert '" + id + "'");
         host_.store().transact([&](Tx& tx) {
           auto rows = tx.query(
               "SELECT channel, destination, resends, reason FROM tech_alerts_deliveries WHERE "
               "id = ? AND alert_id = ?",
               {delivery, id});
           if (rows.empty()) throw NotFound("alert " + id + " has no delivery '" + delivery + "'");
           const std::string channel = rows[0].text(0);
           const std::string destination = rows[0].text(1);
           const bool person = !rows[0].text(3).starts_with("list ");
           if (channel == "email" && person) {
             // The person's own choice stands until they, or an operator for them, undo it.
             if (auto optout = tx.query("SELECT at FROM tech_alerts_optouts WHERE address = ?",
                                        {normalized_address(destination)});
                 !optout.empty()) {
               throw Conflict(destination + " unsubscribed from Tech Alerts on " +
                              format_instant(from_epoch(optout[0].integer(0))) +
                              "; DELETE /api/v1/alert-opt-outs/" + destination +
                              " restores the address, at its owner's request");
             }
           }
           const std::int64_t resends = rows[0].integer(2) + 1;
           const std::string key = "tech_alerts:" + delivery + ":resend " + std::to_string(resends);
           const OutboxMessage m =
               channel == "email" ? email_message(*a, render_email(*a, context(*a, ""), person),
                                                  destination, person, delivery, key)
                                  : webhook_message(*a, destination, delivery, key);
           tx.exec(
               "UPDATE tech_alerts_deliveries SET state = 'queued', resends = ?, updated_at = ? "
               "WHERE id = ?",
               {resends, to_epoch(host_.clock().now()), delivery});
           host_.outbox().enqueue(tx, m);
         });
         return Response::json({{"deliveries", deliveries_json(id)}}, 202);
       },
       "send one delivery of an alert again"});
  routes.add(
      {"GET", "/api/v1/alerts/{id}/preview", "viewer",
       [this](const Request& req) {
         auto a = find_alert(req.params.at("id"));
         if (!a) throw NotFound("no alert '" + req.params.at("id") + "'");
         const std::string channel = req.query_param("channel", "email");
         const std::string part = req.query_param("part", channel == "email" ? "html" : "text");
         const bool ok =
             (channel == "email" && (part == "html" || part == "text" || part == "subject")) ||
             (channel == "webhook" && (part == "text" || part == "body"));
         if (!ok)
           throw ValidationError("channel",
                                 "channel=email takes part=html, text or subject; "
                                 "channel=webhook takes part=text or body");
         const std::string address = req.query_param("recipient", "recipient@example.org");
         if (channel == "webhook" && part == "body")
           return Response::text(webhook_body(*a, a->id + "-preview"), "application/json");
         // The preview shows where the link goes, not a working one: a viewer must not be
         // able to unsubscribe whoever they name in ?recipient=.
         Json ctx = context(*a, address);
         ctx["recipient"]["unsubscribe_url"] =
             settings_.public_url + "/alerts/unsubscribe?address=" + percent_encode(address) +
             "&token=(preview)";
         const std::string out = templates_->render(a->kind, channel, part, ctx);
         return Response::text(
             out, part == "html" ? "text/html; charset=utf-8" : "text/plain; charset=utf-8");
       },
       "the alert as a recipient sees it (?channel=email|webhook&part=html|text|subject|body)"});
  routes.add({"GET", "/api/v1/maintenance-flags", "viewer",
              [this](const Request& req) {
                const std::string window = req.query_param("window");
                auto rows = window.empty()
                                ? host_.store().query(
                                      "SELECT window_id, rule, declared, applied, message, at FROM "
                                      "tech_alerts_flags ORDER BY window_id, rule")
                                : host_.store().query(
                                      "SELECT window_id, rule, declared, applied, message, at FROM "
                                      "tech_alerts_flags WHERE window_id = ? ORDER BY rule",
                                      {window});
                Json items = Json::array();
                for (const auto& r : rows)
                  items.push_back({{"window", r.text(0)},
                                   {"rule", r.text(1)},
                                   {"declared_category", r.text(2)},
                                   {"category", r.text(3)},
                                   {"message", r.text(4)},
                                   {"at", format_instant(from_epoch(r.integer(5)))}});
                return Response::json({{"flags", items}});
              },
              "maintenance windows that broke a notice, hours or budget rule (?window=)"});
  routes.add({"GET", "/api/v1/maintenance-budget", "viewer",
              [this](const Request& req) {
                const Dataset data = host_.catalog().snapshot();
                const std::string only = req.query_param("service");
                Instant at = host_.clock().now();
                if (const std::string text = req.query_param("at"); !text.empty()) {
                  try {
                    at = parse_instant(text);
                  } catch (const TimeError& e) {
                    throw ValidationError("at", e.what());
                  }
                }
                Json items = Json::array();
                const BusinessCalendar provider = host_.catalog().provider_calendar();
                for (const auto& s : data.services) {
                  if (!only.empty() && s.id != only) continue;
                  std::optional<BusinessCalendar> hours;
                  for (const auto& c : data.calendars)
                    if (c.id == s.hours) hours = c.to_calendar();
                  const auto* z = find_zone(zone_of(data, s));
                  const auto use = budget_use(s, z, data.fiscal_year_start_month, provider,
                                              hours ? &*hours : nullptr, data.maintenance, at);
                  const auto fy = fiscal_year_of(at, z, data.fiscal_year_start_month);
                  items.push_back({{"service", s.id},
                                   {"fiscal_year", use.fiscal_year},
                                   {"from", format_instant(fy.bounds.start)},
                                   {"to", format_instant(fy.bounds.end)},
                                   {"budget_seconds", use.budget_seconds},
                                   {"used_seconds", use.used_seconds},
                                   {"remaining_seconds", use.remaining_seconds()},
                                   {"over", use.over()}});
                }
                if (!only.empty() && items.empty()) throw NotFound("no service '" + only + "'");
                return Response::json({{"budgets", items}});
              },
              "fiscal-year maintenance budget per service: used and remaining (?service=, ?at=)"});

  // ---- public pages: no authentication, no external requests ----
  routes.add({"GET", "/status", "",
              [this](const Request&) {
                return Response::text(render_status_html(status_page(host_.clock().now())),
                                      "text/html; charset=utf-8");
              },
              "the status page: every service now, open interruptions, upcoming maintenance"});
  routes.add({"GET", "/status.json", "",
              [this](const Request&) {
                return Response::json(status_json(status_page(host_.clock().now())));
              },
              "the status page as JSON"});
  routes.add({"GET", "/maintenance.ics", "",
              [this](const Request&) {
                return Response::text(render_ics(settings_.provider_name + " maintenance",
                                                 calendar_events(host_.clock().now())),
                                      "text/calendar; charset=utf-8");
              },
              "the maintenance calendar (RFC 5545), one event per window"});
  routes.add(
      {"GET", "/alerts.atom", "",
       [this](const Request&) {
         std::vector<FeedEntry> entries;
         for (const auto& r : host_.store().query(
                  "SELECT id FROM tech_alerts_alerts WHERE sent_at IS NOT NULL ORDER BY seq DESC "
                  "LIMIT 50")) {
           auto a = find_alert(r.text(0));
           if (!a) continue;
           entries.push_back({settings_.public_url + "/alerts/" + a->id, a->title, a->summary,
                              settings_.public_url + "/status", a->kind, *a->sent_at});
         }
         return Response::text(
             render_atom(settings_.public_url + "/alerts.atom",
                         settings_.provider_name + " Tech Alerts",
                         settings_.public_url + "/alerts.atom", settings_.public_url + "/status",
                         settings_.provider_name, host_.clock().now(), entries),
             "application/atom+xml; charset=utf-8");
       },
       "the last 50 alerts as an Atom feed"});
  auto check_token = [this](const Request& req) {
    const std::string address = req.query_param("address");
    if (address.empty() || !looks_like_email(address) ||
        !constant_time_equal(req.query_param("token"), unsubscribe_token(address)))
      throw Problem(403, "Forbidden", "this unsubscribe link is not valid");
    return address;
  };
  routes.add({"GET", "/alerts/unsubscribe", "",
              [check_token](const Request& req) {
                const std::string address = check_token(req);
                return page(
                    "Unsubscribe",
                    "<h1>Unsubscribe</h1><p>Stop sending Tech Alerts, maintenance and outage "
                    "notices alike, to <b>" +
                        escape_html(address) +
                        "</b>?</p><form method=\"post\"><button type=\"submit\" "
                        "name=\"List-Unsubscribe\" value=\"One-Click\">Unsubscribe"
                        "</button></form>");
              },
              "confirmation page of an unsubscribe link"});
  routes.add({"POST", "/alerts/unsubscribe", "",
              [this, check_token](const Request& req) {
                const std::string address = check_token(req);
                const std::string key = normalized_address(address);
                host_.store().transact([&](Tx& tx) {
                  if (tx.exec("INSERT INTO tech_alerts_optouts(address, at) VALUES (?, ?) ON "
                              "CONFLICT(address) DO NOTHING",
                              {key, to_epoch(host_.clock().now())}) > 0) {
                    host_.catalog().audit(tx, Actor{"unsubscribe:" + key}, "create",
                                          "alert_opt_out", key, Json(),
                                          {{"at", format_instant(host_.clock().now())}});
                  }
                });
                host_.log().info("unsubscribed " + address + " from Tech Alerts");
                return page("Unsubscribed", "<h1>Unsubscribed</h1><p><b>" + escape_html(address) +
                                                "</b> gets no more Tech Alerts.</p>");
              },
              "one-click unsubscribe (RFC 8058)"});
  routes.add({"GET", "/api/v1/alert-opt-outs", "operator",
              [this](const Request&) {
                Json out = Json::array();
                for (const auto& r : host_.store().query(
                         "SELECT address, at FROM tech_alerts_optouts ORDER BY address"))
                  out.push_back(
                      {{"address", r.text(0)}, {"at", format_instant(from_epoch(r.integer(1)))}});
                return Response::json({{"opt_outs", out}});
              },
              "the addresses that unsubscribed from Tech Alerts"});
  routes.add({"DELETE", "/api/v1/alert-opt-outs/{address}", "operator",
              [this](const Request& req) {
                const std::string key = normalized_address(req.params.at("address"));
                host_.store().transact([&](Tx& tx) {
                  auto rows =
                      tx.query("SELECT at FROM tech_alerts_optouts WHERE address = ?", {key});
                  if (rows.empty())
                    throw NotFound("'" + key + "' has not unsubscribed from Tech Alerts");
                  tx.exec("DELETE FROM tech_alerts_optouts WHERE address = ?", {key});
                  host_.catalog().audit(
                      tx, Actor{"token:" + req.principal.id}, "delete", "alert_opt_out", key,
                      {{"at", format_instant(from_epoch(rows[0].integer(0)))}}, Json());
                });
                host_.log().info("Tech Alerts go to " + key + " again (restored by token " +
                                 req.principal.id + ")");
                return Response::no_content();
              },
              "restore an address that unsubscribed, at its owner's request"});
}

}  // namespace slmhub::alerts
