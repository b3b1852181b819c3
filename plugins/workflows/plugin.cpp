// The workflows plugin module: Service Interruption Analyses drafted from ended interruptions,
// their sections and their steps over HTTP. All logic is in slmhub_workflows_core; this file
// only wires it into the host.
#include <array>
#include <memory>

#include "sia.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"

namespace {

using slmhub::Json;
using slmhub::Request;
using slmhub::Response;
using slmhub::workflows::Sia;
using slmhub::workflows::SiaBook;

slmhub::Actor actor_of(const Request& req) { return {"token:" + req.principal.id}; }

const std::string& id_param(const Request& req) { return req.params.at("id"); }

constexpr std::array<const char*, 4> kStates{"draft", "submitted", "approved", "published"};

std::string state_param(const Request& req) {
  std::string state = req.query_param("state");
  if (state.empty()) return state;
  for (const char* s : kStates) {
    if (state == s) return state;
  }
  throw slmhub::ValidationError(
      "state", "'" + state + "' is not an SIA state (draft, submitted, approved, published)");
}

// The body of POST .../return: {"reason": "..."}.
std::string reason_of(const Request& req) {
  std::vector<slmhub::FieldError> errors;
  const Json body = req.json();
  slmhub::ObjectReader r(body, "$", errors);
  std::string reason = r.required_string("reason");
  r.finish();
  slmhub::throw_if_errors(std::move(errors));
  return reason;
}

class Workflows : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"workflows", "0.1.0", slmhub::kPluginApi, {}};
  }
  std::vector<slmhub::ConfigKey> config_schema() const override {
    return {{"sia.distribution", slmhub::ConfigType::list, "",
             "comma-separated e-mail addresses a published SIA is sent to (director, deputies, "
             "monitoring team); none when empty"}};
  }

  void start(slmhub::Host& host) override {
    host.store().migrate("workflows", SiaBook::migrations());
    sias_ = std::make_unique<SiaBook>(host.store(), host.catalog(), host.events(), host.outbox(),
                                      host.deadlines(), host.clock(), host.log(),
                                      host.config().list("sia.distribution"));
    sias_->subscribe();
    register_routes(host.http());
  }
  void stop() override {}

 private:
  void register_routes(slmhub::HttpRoutes& http) {
    SiaBook& book = *sias_;
    http.add({"GET", "/api/v1/sias", "viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& s : book.list(state_param(req), req.query_param("service"))) {
                  items.push_back(slmhub::workflows::sia_json(s));
                }
                return Response::json({{"sias", std::move(items)}});
              },
              "Service Interruption Analyses, soonest due first (?state=, ?service=)"});
    http.add({"GET", "/api/v1/sias/{id}", "viewer",
              [&book](const Request& req) {
                auto sia = book.find(id_param(req));
                if (!sia) {
                  throw slmhub::NotFound("no SIA for interruption '" + id_param(req) + "'");
                }
                return Response::json(slmhub::workflows::sia_json(*sia));
              },
              "one SIA with its sections and what approval still needs"});
    http.add({"PUT", "/api/v1/sias/{id}/sections/{section}", "service_manager",
              [&book](const Request& req) {
                return sia_response(book.write_section(actor_of(req), id_param(req),
                                                       req.params.at("section"), req.json()));
              },
              "replaces one section (a-e) of a draft SIA"});
    http.add({"POST", "/api/v1/sias/{id}/submit", "service_manager",
              [&book](const Request& req) {
                return sia_response(book.submit(actor_of(req), id_param(req)));
              },
              "draft → submitted"});
    http.add({"POST", "/api/v1/sias/{id}/approve", "approver",
              [&book](const Request& req) {
                return sia_response(book.approve(actor_of(req), id_param(req)));
              },
              "submitted → approved; 422 listing every missing field"});
    http.add({"POST", "/api/v1/sias/{id}/return", "approver",
              [&book](const Request& req) {
                return sia_response(
                    book.return_to_draft(actor_of(req), id_param(req), reason_of(req)));
              },
              "submitted → draft, with a reason"});
    http.add({"POST", "/api/v1/sias/{id}/publish", "service_manager",
              [&book](const Request& req) {
                return sia_response(book.publish(actor_of(req), id_param(req)));
              },
              "approved → published: sia.published and the e-mail to the distribution list"});
  }

  static Response sia_response(const Sia& sia) {
    return Response::json(slmhub::workflows::sia_json(sia));
  }

  std::unique_ptr<SiaBook> sias_;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Workflows>(); }

}  // namespace

SLMHUB_PLUGIN(create)
