// The workflows plugin module: Service Interruption Analyses drafted from ended interruptions,
// the SLA credit work orders opened from published reports, credit requests and disputes,
// over HTTP. All logic is in slmhub_workflows_core; this file only wires it into the host.
#include <memory>

#include "claims.hpp"
#include "credits.hpp"
#include "documents.hpp"
#include "obligations.hpp"
#include "sia.hpp"
#include "slmhub/errors.hpp"
#include "slmhub/plugin.hpp"

namespace {

using slmhub::Json;
using slmhub::Request;
using slmhub::Response;
using slmhub::workflows::Attachments;
using slmhub::workflows::ClaimBook;
using slmhub::workflows::CreditBook;
using slmhub::workflows::Filer;
using slmhub::workflows::ObligationBook;
using slmhub::workflows::Sia;
using slmhub::workflows::SiaBook;

slmhub::Actor actor_of(const Request& req) { return {"token:" + req.principal.id}; }

const std::string& id_param(const Request& req) { return req.params.at("id"); }

// A list's filter (?state=, ?kind=): empty, or one of `values`; a typo is a 400 naming the
// parameter, not an empty list that looks like an answer.
std::string filter_param(const Request& req, const std::string& name, const std::string& what,
                         std::initializer_list<const char*> values) {
  std::string value = req.query_param(name);
  if (value.empty()) return value;
  std::string known;
  for (const char* v : values) {
    if (value == v) return value;
    known += (known.empty() ? "" : ", ") + std::string(v);
  }
  throw slmhub::ValidationError(name, "'" + value + "' is not " + what + " (" + known + ")");
}

// The body of POST .../return, .../deny, .../escalate: {"reason": "..."}.
std::string reason_of(const Request& req) {
  std::vector<slmhub::FieldError> errors;
  const Json body = req.json();
  slmhub::ObjectReader r(body, "$", errors);
  std::string reason = r.required_string("reason");
  r.finish();
  slmhub::throw_if_errors(std::move(errors));
  return reason;
}

slmhub::Problem forbidden(std::string detail) {
  return slmhub::Problem(403, "Forbidden", std::move(detail));
}

// Whose records a caller may read on a "customer|viewer" route (the route admits no one
// else): staff with `viewer` read every customer's (""), a customer token only its own.
std::string scope_of(const Request& req) {
  return req.principal.has_role("viewer") ? std::string() : req.principal.customer();
}

// Who files a request or a dispute on a "customer|service_manager" route: a customer token for
// its own customer, or staff with `service_manager` on a customer's behalf.
Filer filer_of(const Request& req) {
  if (req.principal.has_role("service_manager")) return {actor_of(req), {}, true};
  return {actor_of(req), req.principal.customer(), false};
}

// A record of another customer is "not found" for a customer token: it does not learn that it
// exists.
template <typename T>
const T& visible(const std::optional<T>& item, const std::string& scope, const std::string& what,
                 const std::string& id) {
  if (!item || (!scope.empty() && item->customer != scope)) {
    throw slmhub::NotFound("no " + what + " '" + id + "'");
  }
  return *item;
}

// GET .../documents/{n}: the bytes of one attachment, as they were received or sent.
Response attachment_response(const Attachments& attachments, const std::string& owner,
                             const std::string& number) {
  std::int64_t n = 0;
  for (char ch : number) {
    if (ch < '0' || ch > '9' || n > 1'000'000'000) throw slmhub::NotFound("no document " + number);
    n = n * 10 + (ch - '0');
  }
  auto found = attachments.read(owner, n);
  if (!found) throw slmhub::NotFound("no document " + number + " on " + owner);
  return Response::download(std::move(found->second), found->first.content_type, found->first.name);
}

class Workflows : public slmhub::Plugin {
 public:
  slmhub::PluginInfo info() const override {
    return {"workflows", "0.1.0", slmhub::kPluginApi, {}};
  }
  std::vector<slmhub::ConfigKey> config_schema() const override {
    return {{"sia.distribution", slmhub::ConfigType::list, "",
             "comma-separated e-mail addresses a published SIA is sent to (director, deputies, "
             "monitoring team); none when empty"},
            {"sia.account_team", slmhub::ConfigType::string, "",
             "address a published SIA is sent from to the impacted customers' outage and "
             "primary technical contacts; empty: the account team forwards it by hand"},
            {"obligations_schedule", slmhub::ConfigType::cron, "0 7 * * *",
             "cron schedule (UTC) of the job that opens the recurring obligations new customers "
             "and new credential holders imply, and withdraws those nobody holds any more"}};
  }

  void start(slmhub::Host& host) override {
    host.store().migrate("workflows", SiaBook::migrations());
    host.store().migrate("workflows.attachments", Attachments::migrations());
    host.store().migrate("workflows.credits", CreditBook::migrations());
    host.store().migrate("workflows.claims", ClaimBook::migrations());
    clock_ = &host.clock();
    attachments_ = std::make_unique<Attachments>(host.store());
    sias_ = std::make_unique<SiaBook>(host.store(), host.catalog(), host.events(), host.outbox(),
                                      host.deadlines(), *attachments_, host.clock(), host.log(),
                                      host.config().list("sia.distribution"),
                                      host.config().string("sia.account_team"));
    credits_ = std::make_unique<CreditBook>(host.store(), host.catalog(), host.events(),
                                            host.deadlines(), host.clock(), host.log());
    claims_ = std::make_unique<ClaimBook>(host.store(), host.catalog(), host.events(),
                                          host.outbox(), host.deadlines(), *credits_, *attachments_,
                                          host.clock(), host.log());
    host.store().migrate("workflows.obligations", ObligationBook::migrations());
    obligations_ = std::make_unique<ObligationBook>(host.store(), host.catalog(), host.deadlines(),
                                                    host.clock(), host.log());
    sias_->subscribe();
    credits_->subscribe();
    host.scheduler().add({"workflows.obligations", host.config().string("obligations_schedule"),
                          "UTC",
                          "opens the recurring obligations (SLA reviews, contact validations, "
                          "use-policy acknowledgements) every customer's record implies",
                          [this](const slmhub::JobContext&) { return obligations_->sync(); }});
    register_routes(host.http());
    register_credit_routes(host.http());
    register_claim_routes(host.http());
    register_obligation_routes(host.http());
  }
  void stop() override {}

 private:
  void register_routes(slmhub::HttpRoutes& http) {
    SiaBook& book = *sias_;
    http.add({"GET", "/api/v1/sias", "viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& s : book.list(
                         filter_param(req, "state", "an SIA state",
                                      {"draft", "submitted", "approved", "published", "withdrawn"}),
                         req.query_param("service"))) {
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
    http.add({"GET", "/api/v1/sias/{id}/attachments/{n}", "viewer",
              [this](const Request& req) {
                return attachment_response(*attachments_, "sia/" + id_param(req),
                                           req.params.at("n"));
              },
              "the restoration notice attached to section E, as sent"});
    http.add({"POST", "/api/v1/sias/{id}/actions/{n}/done", "service_manager",
              [&book](const Request& req) {
                const std::string& n = req.params.at("n");
                if (n.empty() || n.size() > 6 ||
                    n.find_first_not_of("0123456789") != std::string::npos) {
                  throw slmhub::NotFound("no corrective action '" + n + "'");
                }
                return sia_response(book.complete_action(actor_of(req), id_param(req),
                                                         static_cast<std::size_t>(std::stoul(n))));
              },
              "records a corrective action of a published SIA as carried out"});
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

  void register_credit_routes(slmhub::HttpRoutes& http) {
    using slmhub::workflows::credit_json;
    using slmhub::workflows::work_order_json;
    CreditBook& book = *credits_;
    http.add({"GET", "/api/v1/credit-work-orders", "viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& w :
                     book.work_orders(filter_param(req, "state", "a work order state",
                                                   {"open", "approved", "withdrawn"}),
                                      req.query_param("month"))) {
                  items.push_back(work_order_json(w));
                }
                return Response::json({{"work_orders", std::move(items)}});
              },
              "SLA Credit work orders, soonest due first (?state=open|approved|withdrawn, "
              "?month=)"});
    http.add({"GET", "/api/v1/credit-work-orders/{id}", "viewer",
              [&book](const Request& req) {
                auto w = book.work_order(id_param(req));
                if (!w) throw slmhub::NotFound("no credit work order '" + id_param(req) + "'");
                return Response::json(work_order_json(*w));
              },
              "one SLA Credit work order with its credit form"});
    http.add({"POST", "/api/v1/credit-work-orders/{id}/approve", "approver",
              [&book](const Request& req) {
                return Response::json(
                    work_order_json(book.approve_work_order(actor_of(req), id_param(req))));
              },
              "open → approved: each customer's credit approved (credit.approved)"});
    http.add({"GET", "/api/v1/credits", "customer|viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& c : book.credits(
                         scope_of(req), filter_param(req, "state", "a credit state",
                                                     {"pending", "approved", "withdrawn"}))) {
                  items.push_back(credit_json(c));
                }
                return Response::json({{"credits", std::move(items)}});
              },
              "SLA credits (a customer token sees its own; ?state=pending|approved|withdrawn)"});
    http.add({"GET", "/api/v1/credits/{id}", "customer|viewer",
              [&book](const Request& req) {
                return Response::json(credit_json(
                    visible(book.credit(id_param(req)), scope_of(req), "credit", id_param(req))));
              },
              "one SLA credit with its adjustments"});
    http.add({"POST", "/api/v1/credits/{id}/approve", "approver",
              [&book](const Request& req) {
                return Response::json(
                    credit_json(book.approve_credit(actor_of(req), id_param(req))));
              },
              "pending → approved for the credit of an accepted request (credit.approved)"});
    http.add({"POST", "/api/v1/credits/{id}/withdraw", "approver",
              [&book](const Request& req) {
                return Response::json(credit_json(
                    book.withdraw_credit(actor_of(req), id_param(req), reason_of(req))));
              },
              "pending → withdrawn, with a reason, for the credit of an accepted request"});
  }

  void register_claim_routes(slmhub::HttpRoutes& http) {
    using slmhub::workflows::dispute_json;
    using slmhub::workflows::request_json;
    ClaimBook& book = *claims_;
    http.add({"POST", "/api/v1/credit-requests", "customer|service_manager",
              [&book](const Request& req) {
                return Response::json(request_json(book.file_request(filer_of(req), req.json())),
                                      201);
              },
              "file a single-customer credit request (60-day window); slmhub adds its evidence"});
    http.add({"GET", "/api/v1/credit-requests", "customer|viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& q : book.requests(
                         scope_of(req), filter_param(req, "state", "a credit request state",
                                                     {"received", "accepted", "denied"}))) {
                  items.push_back(request_json(q));
                }
                return Response::json({{"credit_requests", std::move(items)}});
              },
              "credit requests (a customer token sees its own; ?state=received|accepted|denied)"});
    http.add({"GET", "/api/v1/credit-requests/{id}", "customer|viewer",
              [&book](const Request& req) {
                return Response::json(request_json(visible(
                    book.request(id_param(req)), scope_of(req), "credit request", id_param(req))));
              },
              "one credit request with the claim and slmhub's measurement side by side"});
    http.add({"GET", "/api/v1/credit-requests/{id}/documents/{n}", "customer|viewer",
              [&book](const Request& req) {
                visible(book.request(id_param(req)), scope_of(req), "credit request",
                        id_param(req));
                return attachment_response(book.attachments(), "credit-request/" + id_param(req),
                                           req.params.at("n"));
              },
              "one supporting document of a credit request, as received"});
    http.add({"POST", "/api/v1/credit-requests/{id}/accept", "service_manager",
              [&book](const Request& req) {
                std::vector<slmhub::FieldError> errors;
                const Json body = req.body.empty() ? Json::object() : req.json();
                slmhub::ObjectReader r(body, "$", errors);
                const auto cents = r.optional_int("credit_cents", 0);
                const std::string notes = r.optional_string("notes").value_or("");
                r.finish();
                slmhub::throw_if_errors(std::move(errors));
                return Response::json(
                    request_json(book.accept(actor_of(req), id_param(req), cents, notes)));
              },
              "received → accepted: a pending credit (default amount: the measured credit)"});
    http.add({"POST", "/api/v1/credit-requests/{id}/deny", "service_manager",
              [&book](const Request& req) {
                return Response::json(
                    request_json(book.deny(actor_of(req), id_param(req), reason_of(req))));
              },
              "received → denied, with a reason e-mailed to the customer"});
    http.add({"POST", "/api/v1/disputes", "customer|service_manager",
              [&book](const Request& req) {
                return Response::json(dispute_json(book.file_dispute(filer_of(req), req.json())),
                                      201);
              },
              "dispute an issued credit within 30 days of its receipt (level 1)"});
    http.add({"GET", "/api/v1/disputes", "customer|viewer",
              [&book](const Request& req) {
                Json items = Json::array();
                for (const auto& d : book.disputes(
                         scope_of(req),
                         filter_param(req, "state", "a dispute state", {"open", "closed"}))) {
                  items.push_back(dispute_json(d));
                }
                return Response::json({{"disputes", std::move(items)}});
              },
              "disputes (a customer token sees its own; ?state=open|closed)"});
    http.add({"GET", "/api/v1/disputes/{id}", "customer|viewer",
              [&book](const Request& req) {
                return Response::json(dispute_json(
                    visible(book.dispute(id_param(req)), scope_of(req), "dispute", id_param(req))));
              },
              "one dispute with its escalations, resolution and documents"});
    http.add({"GET", "/api/v1/disputes/{id}/documents/{n}", "customer|viewer",
              [&book](const Request& req) {
                visible(book.dispute(id_param(req)), scope_of(req), "dispute", id_param(req));
                return attachment_response(book.attachments(), "dispute/" + id_param(req),
                                           req.params.at("n"));
              },
              "one document of a dispute: supporting information or the outcome e-mail"});
    http.add({"POST", "/api/v1/disputes/{id}/escalate", "service_manager",
              [&book](const Request& req) {
                return Response::json(
                    dispute_json(book.escalate(actor_of(req), id_param(req), reason_of(req))));
              },
              "level 1 → 2 → 3, with a reason"});
    http.add({"POST", "/api/v1/disputes/{id}/resolve", "service_manager|approver",
              [&book](const Request& req) {
                std::vector<slmhub::FieldError> errors;
                const Json body = req.json();
                slmhub::ObjectReader r(body, "$", errors);
                const std::int64_t cents = r.required_int("credit_cents", 0);
                const std::string outcome = r.required_string("outcome");
                r.finish();
                slmhub::throw_if_errors(std::move(errors));
                return Response::json(dispute_json(book.resolve(
                    actor_of(req), req.principal.has_role("service_manager"),
                    req.principal.has_role("approver"), id_param(req), cents, outcome)));
              },
              "close with the credit's amount (credit.adjusted when it changes) and the outcome "
              "e-mail; levels 1-2 by a service manager, level 3 by an approver"});
  }

  void register_obligation_routes(slmhub::HttpRoutes& http) {
    using slmhub::workflows::obligation_json;
    ObligationBook& book = *obligations_;
    const slmhub::Clock* clock = clock_;
    http.add({"GET", "/api/v1/obligations", "customer|viewer",
              [&book, clock](const Request& req) {
                Json items = Json::array();
                for (const auto& o :
                     book.list(scope_of(req),
                               filter_param(req, "kind", "an obligation kind",
                                            {"sla_review", "contact_validation", "use_policy"}),
                               filter_param(req, "state", "an obligation state",
                                            {"open", "done", "withdrawn"}))) {
                  items.push_back(obligation_json(o, clock->now()));
                }
                return Response::json({{"obligations", std::move(items)}});
              },
              "recurring obligations, soonest due first (a customer token sees its own; "
              "?kind=sla_review|contact_validation|use_policy, ?state=open|done|withdrawn)"});
    http.add({"GET", "/api/v1/obligations/flagged", "viewer",
              [&book](const Request&) {
                return Response::json({{"customers", book.flagged()}});
              },
              "customers whose contact validation is overdue (the SLA allows suspension)"});
    http.add({"POST", "/api/v1/obligations/{id}/complete", "customer|service_manager",
              [&book, clock](const Request& req) {
                // The route admits a customer token or `service_manager`.
                const std::string scope = req.principal.has_role("service_manager")
                                              ? std::string()
                                              : req.principal.customer();
                const auto found = book.find(id_param(req));
                const auto& o = visible(found, scope, "obligation", id_param(req));
                // The SLA review is the provider's to record; the other two are the customer's.
                if (o.kind == "sla_review" && !req.principal.has_role("service_manager")) {
                  throw forbidden("the annual SLA review is recorded by a service manager");
                }
                std::vector<slmhub::FieldError> errors;
                const Json body = req.body.empty() ? Json::object() : req.json();
                slmhub::ObjectReader r(body, "$", errors);
                const std::string note = r.optional_string("note").value_or("");
                r.finish();
                slmhub::throw_if_errors(std::move(errors));
                return Response::json(obligation_json(
                    book.complete(actor_of(req), id_param(req), note), clock->now()));
              },
              "record who completed an obligation; the next cycle opens"});
  }

  static Response sia_response(const Sia& sia) {
    return Response::json(slmhub::workflows::sia_json(sia));
  }

  std::unique_ptr<Attachments> attachments_;
  std::unique_ptr<SiaBook> sias_;
  std::unique_ptr<CreditBook> credits_;
  std::unique_ptr<ClaimBook> claims_;
  std::unique_ptr<ObligationBook> obligations_;
  const slmhub::Clock* clock_ = nullptr;
};

std::unique_ptr<slmhub::Plugin> create() { return std::make_unique<Workflows>(); }

}  // namespace

SLMHUB_PLUGIN(create)
