// The routes the host itself answers: health, metrics, plugins, jobs, outbox, tokens and
// the OpenAPI document. Entity routes are in core/core_routes.cpp.
#include <map>

#include "app/server.hpp"
#include "deadlines/deadline_store.hpp"
#include "events/event_bus.hpp"
#include "events/outbox.hpp"
#include "http/auth.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"
#include "jobs/job_scheduler.hpp"
#include "plugins/plugin_manager.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"
#include "storage/database.hpp"

namespace slmhub::host {

extern const char* const kOpenApiYaml;

namespace {

Json route_json(const RouteEntry& e) {
  return {{"method", e.route.method},
          {"path", e.route.pattern},
          {"role", e.route.role},
          {"summary", e.route.summary}};
}

}  // namespace

void Server::add_host_routes() {
  Router& r = *router_;
  // The URL `serve` prints, opened in a browser: what a person can open without a token,
  // and where the API is described. Built from the route table, so a plugin's pages appear
  // when it is loaded. Links are relative, so the page works behind a proxy's path prefix.
  r.add({"GET", "/", "",
         [this](const Request&) {
           std::string items;
           for (const auto& e : router_->routes()) {
             const std::string& path = e.route.pattern;
             if (e.route.method != "GET" || !e.route.role.empty() || path == "/" ||
                 path.starts_with("/api/") || path.find('{') != std::string::npos) {
               continue;
             }
             items += "<li><a href=\"" + escape_html(path.substr(1)) + "\">" + escape_html(path) +
                      "</a>: " + escape_html(e.route.summary) + "</li>\n";
           }
           return Response::text(
               "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>slmhub</title><style>body{font-family:sans-serif;max-width:44em;"
               "margin:2em auto;padding:0 1em;line-height:1.4}</style></head><body>\n"
               "<h1>slmhub</h1>\n<p>Service level management. The API is under "
               "<code>/api/v1</code> and takes a bearer token; <a href=\"api/v1/openapi.yaml\">"
               "its OpenAPI description</a> names every route and the role it needs.</p>\n"
               "<h2>Open without a token</h2>\n<ul>\n" +
                   items + "</ul>\n</body></html>\n",
               "text/html; charset=utf-8");
         },
         "this page: what opens without a token, and where the API is described"},
        "host");
  r.add({"GET", "/healthz", "",
         [](const Request&) {
           return Response::json({{"status", "ok"}});
         },
         "the process is up"},
        "host");
  r.add({"GET", "/readyz", "",
         [this](const Request&) {
           bool store_ok = true;
           try {
             db_->query("SELECT 1");
           } catch (const std::exception& e) {
             // In the log, not in the answer: the probe is open to anyone, and the store's
             // error can name its host, user and database.
             store_ok = false;
             log("host").warning(std::string("readiness: the store does not answer: ") + e.what());
           }
           bool ok = store_ok && ready_;
           Json body = {{"status", ok ? "ready" : "not ready"},
                        {"store", store_ok ? "ok" : "unavailable"},
                        {"plugins", ready_ ? "started" : "starting"}};
           return Response::json(body, ok ? 200 : 503);
         },
         "the store answers and the plugins have started"},
        "host");
  r.add({"GET", "/metrics", "",
         [this](const Request&) {
           return Response::text(metrics_->render(), "text/plain; version=0.0.4");
         },
         "Prometheus metrics"},
        "host");
  r.add({"GET", "/api/v1/openapi.yaml", "",
         [](const Request&) { return Response::text(kOpenApiYaml, "application/yaml"); },
         "this API's OpenAPI description"},
        "host");
  r.add({"GET", "/api/v1/plugins", "viewer",
         [this](const Request&) {
           // What each owner registered; nlohmann turns a null into an array on push_back.
           std::map<std::string, Json> routes, jobs, commands;
           for (const auto& e : router_->routes()) routes[e.owner].push_back(route_json(e));
           for (const auto& j : jobs_->list())
             jobs[j.name.substr(0, j.name.find('.'))].push_back(j.name);
           for (const auto& [c, owner] : commands_->all()) commands[owner].push_back(c.name);
           auto of = [](const std::map<std::string, Json>& by_owner, const std::string& name) {
             auto it = by_owner.find(name);
             return it == by_owner.end() ? Json::array() : it->second;
           };
           Json out = Json::array();
           for (const auto& rec : plugins_->records()) {
             Json p = {{"name", rec.name},
                       {"version", rec.version},
                       {"state", to_string(rec.state)},
                       {"path", rec.path},
                       {"needs", rec.needs},
                       {"routes", of(routes, rec.name)},
                       {"jobs", of(jobs, rec.name)},
                       {"commands", of(commands, rec.name)}};
             // The keys it reads, as `slmhub plugins list --verbose` shows them; not their
             // values, which a viewer need not see.
             Json config = Json::array();
             for (const auto& key : rec.config) {
               config.push_back({{"key", "plugins." + rec.name + "." + key.key},
                                 {"type", slmhub::to_string(key.type)},
                                 {"default", key.default_value},
                                 {"required", key.required},
                                 {"help", key.help}});
             }
             p["config"] = std::move(config);
             if (!rec.reason.empty()) p["reason"] = rec.reason;
             out.push_back(std::move(p));
           }
           return Response::json({{"plugins", out}});
         },
         "loaded plugins with their state and what they registered"},
        "host");
  r.add({"GET", "/api/v1/routes", "viewer",
         [this](const Request&) {
           Json out = Json::array();
           for (const auto& e : router_->routes()) {
             Json route = route_json(e);
             route["owner"] = e.owner;
             out.push_back(std::move(route));
           }
           return Response::json({{"routes", out}});
         },
         "the route table: every route with its owner and required role"},
        "host");
  r.add({"GET", "/api/v1/jobs", "viewer",
         [this](const Request&) {
           Json out = Json::array();
           for (const auto& j : jobs_->list()) out.push_back(to_json(j));
           return Response::json({{"jobs", out}});
         },
         "scheduled jobs with their last and next runs"},
        "host");
  r.add({"GET", "/api/v1/events/subscribers", "viewer",
         [this](const Request&) {
           Json out = Json::array();
           for (const auto& s : events_->subscribers()) out.push_back(to_json(s));
           return Response::json({{"subscribers", out}});
         },
         "event subscribers: cursor, backlog, failures and the instance delivering to each"},
        "host");
  r.add({"GET", "/api/v1/deadlines", "viewer",
         [this](const Request& req) {
           const std::string state = req.query_param("state");
           if (!state.empty() && state != "open" && state != "missed" && state != "done")
             throw ValidationError("state", "'" + state + "' is not open, missed or done");
           Json out = Json::array();
           for (const auto& d : deadlines_->list(state)) out.push_back(to_json(d));
           return Response::json({{"deadlines", out}});
         },
         "every dated obligation, soonest first (?state=open|missed|done)"},
        "host");
  r.add({"POST", "/api/v1/jobs/{name}/run", "operator|billing",
         [this](const Request& req) {
           try {
             // The route admits every role a shipped job names; the job's own role decides.
             const std::string role = jobs_->role(req.params.at("name"));
             if (!req.principal.has_role(role))
               throw Problem(
                   403, "Forbidden",
                   "the job '" + req.params.at("name") + "' needs the role '" + role + "'");
             auto outcome = jobs_->run_now(req.params.at("name"));
             return Response::json({{"job", req.params.at("name")}, {"output", outcome}});
           } catch (const std::out_of_range&) {
             throw NotFound("no job named '" + req.params.at("name") + "'");
           } catch (const JobBusy& e) {
             throw Conflict(e.what());  // try again when the running one is done
           } catch (const JobFailed& e) {
             // The run is recorded as failed; the caller sees why, not only "see the log".
             throw Problem(500, "Job Failed", e.what());
           }
         },
         "run a job now, with the role the job names (GET /api/v1/jobs); 409 while it is running, "
         "500 with the job's error when it fails"},
        "host");
  r.add({"GET", "/api/v1/outbox", "operator",
         [this](const Request& req) {
           const auto state = req.query_param("state");
           if (!state.empty() && !OutboxService::is_state(state))
             throw ValidationError("state",
                                   "'" + state + "' is not pending, sending, sent or dead");
           return Response::json({{"messages", outbox_->list(state, 100)}});
         },
         "outgoing messages: pending, being sent, sent and dead letters"},
        "host");
  r.add({"GET", "/api/v1/tokens", "admin",
         [this](const Request&) {
           Json out = Json::array();
           for (const auto& t : tokens_->list()) {
             Json j = {{"id", t.id},
                       {"name", t.name},
                       {"roles", t.roles},
                       {"created_at", format_instant(t.created_at)}};
             if (t.expires_at) j["expires_at"] = format_instant(*t.expires_at);
             if (t.revoked_at) j["revoked_at"] = format_instant(*t.revoked_at);
             out.push_back(std::move(j));
           }
           return Response::json({{"tokens", out}});
         },
         "API tokens (never their secrets)"},
        "host");
  r.add({"POST", "/api/v1/tokens", "admin",
         [this](const Request& req) {
           Json body = req.json();
           std::vector<FieldError> errors;
           ObjectReader in(body, "$", errors);
           auto name = in.required_string("name");
           auto roles = in.required_string_list("roles");
           auto expires = in.optional_instant("expires_at");
           in.finish();
           if (!errors.empty()) throw ValidationError(errors);
           try {
             auto created = tokens_->create("token:" + req.principal.id, name, roles, expires);
             return Response::json({{"id", created.info.id}, {"token", created.token}}, 201);
           } catch (const std::invalid_argument& e) {
             throw ValidationError("$.roles", e.what());
           }
         },
         "create a token; its secret is shown once"},
        "host");
  r.add({"DELETE", "/api/v1/tokens/{id}", "admin",
         [this](const Request& req) {
           if (!tokens_->revoke("token:" + req.principal.id, req.params.at("id")))
             throw NotFound("no active token '" + req.params.at("id") + "'");
           return Response::no_content();
         },
         "revoke a token"},
        "host");
}

}  // namespace slmhub::host
