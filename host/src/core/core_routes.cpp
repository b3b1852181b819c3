// HTTP routes of the core entities: one set of CRUD routes per EntityKind, customer
// contacts and subscriptions, tickets and messages, the dataset import and the audit log.
#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <tuple>

#include "core/core_store.hpp"
#include "http/router.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::host {
namespace {

Actor actor_of(const Request& req) { return Actor{"token:" + req.principal.id}; }

Json parse_body_object(const Request& req) {
  Json body = req.json();
  if (!body.is_object())
    throw ValidationError("$", "expected a JSON object, found " + json_type_name(body));
  return body;
}

// PUT /x/{id}: the id in the path wins; a different id in the body is an error, not a
// silent rename.
Json with_path_id(Json body, const std::string& id) {
  if (body.contains("id") && body["id"] != id)
    throw ValidationError("$.id", "the body's id " + body["id"].dump() +
                                      " differs from the id in the path '" + id + "'");
  body["id"] = id;
  return body;
}

// Ticket fields a client may set, read strictly.
void read_ticket_fields(ObjectReader& in, Ticket& t, bool creating) {
  static const std::vector<std::string> kKinds{"incident", "service_request"};
  static const std::vector<std::string> kStatuses{"new", "open", "pending", "resolved", "closed"};
  if (creating) {
    t.subject = in.required_string("subject");
  } else if (auto s = in.optional_string("subject")) {
    t.subject = *s;
  }
  if (auto k = in.optional_string("kind")) {
    if (std::find(kKinds.begin(), kKinds.end(), *k) == kKinds.end())
      in.error("kind", "'" + *k + "' is not incident or service_request");
    t.kind = *k;
  }
  if (auto s = in.optional_string("status")) {
    if (std::find(kStatuses.begin(), kStatuses.end(), *s) == kStatuses.end())
      in.error("status", "'" + *s + "' is not new, open, pending, resolved or closed");
    t.status = *s;
  }
  if (auto p = in.optional_int("priority", 1, 5)) t.priority = static_cast<int>(*p);
}

// A list names only what it is filtered by: a misspelt or unsupported filter (?status=open)
// would otherwise answer the whole list as if it were the filtered one.
void only_query(const Request& req, std::initializer_list<std::string_view> known) {
  std::vector<FieldError> errors;
  std::string names;
  for (const auto k : known) names += (names.empty() ? "" : ", ") + std::string(k);
  for (const auto& [name, value] : req.query) {
    if (std::find(known.begin(), known.end(), name) == known.end())
      errors.push_back({name, "is not a parameter of this list (it takes " + names + ")"});
  }
  throw_if_errors(std::move(errors));
}

// A customer principal reads only its own tickets; staff (`viewer`) read all. Writing takes
// `operator` besides: a customer integration's token may also read as `viewer`, and that must
// not let it write to other customers' tickets.
void check_ticket_access(const Request& req, const Ticket& t, const char* staff_role = "viewer") {
  auto own = req.principal.customer();
  if (!own.empty() && !req.principal.has_role(staff_role) && t.customer != own)
    throw NotFound("no ticket '" + t.id + "'");
}

}  // namespace

EntityRecord CoreStore::parse(const EntityKind& kind, const Request& request) {
  if (kind.plural == "interruptions") {
    if (auto v = try_read_interruption(request.body, request.max_json_depth))
      return interruption_record(*v, "$");
  }
  return parse(kind, parse_body_object(request), "$");
}

// What a write stored: the record itself, except for maintenance, which the maintenance
// policy may have re-classified on the way in.
std::string CoreStore::stored_text(const EntityKind& kind, const EntityRecord& record) const {
  if (kind.plural != "maintenance") return record.text;
  auto stored = get(kind, record.id);
  return stored ? stored->dump() : record.text;
}

void CoreStore::add_routes(Router& router) {
  for (const auto& kind : kinds()) {
    const EntityKind* k = &kind;
    const std::string base = "/api/v1/" + kind.plural;
    router.add({"GET", base, "viewer",
                [this, k](const Request& req) {
                  only_query(req, {"service"});
                  std::optional<std::string> service;
                  if (auto s = req.query_param("service"); !s.empty()) {
                    // Only windows and interruptions belong to one service; for the others the
                    // filter would answer an empty list that looks like a real one.
                    if (k->plural != "maintenance" && k->plural != "interruptions")
                      throw ValidationError("service", k->plural + " are not filtered by service");
                    service = s;
                  }
                  Json items = Json::array();
                  for (auto& j : list(*k, service)) items.push_back(std::move(j));
                  return Response::json({{k->plural, items}});
                },
                "list " + kind.plural +
                    (kind.plural == "maintenance" || kind.plural == "interruptions"
                         ? " (?service= filters)"
                         : "")},
               "host");
    router.add({"GET", base + "/{id}", "viewer",
                [this, k](const Request& req) {
                  auto item = get(*k, req.params.at("id"));
                  if (!item) throw NotFound("no " + k->singular + " '" + req.params.at("id") + "'");
                  return Response::json(*item);
                },
                "one " + kind.singular},
               "host");
    router.add({"POST", base, kind.write_role,
                [this, k](const Request& req) {
                  auto record = parse(*k, req);
                  auto actor = actor_of(req);
                  writer_.submit([&](Tx& tx) { write(tx, actor, *k, record, true); });
                  auto r = Response::text(stored_text(*k, record), "application/json", 201);
                  r.headers.emplace_back("Location", "/api/v1/" + k->plural + "/" + record.id);
                  return r;
                },
                "create a " + kind.singular + " (409 if the id exists)"},
               "host");
    router.add({"PUT", base + "/{id}", kind.write_role,
                [this, k](const Request& req) {
                  auto record =
                      parse(*k, with_path_id(parse_body_object(req), req.params.at("id")), "$");
                  auto actor = actor_of(req);
                  writer_.submit([&](Tx& tx) { write(tx, actor, *k, record, false); });
                  return Response::text(stored_text(*k, record), "application/json");
                },
                "create or replace a " + kind.singular},
               "host");
    router.add({"DELETE", base + "/{id}", kind.write_role,
                [this, k](const Request& req) {
                  auto actor = actor_of(req);
                  writer_.submit([&](Tx& tx) { remove(tx, actor, *k, req.params.at("id")); });
                  return Response::no_content();
                },
                "delete a " + kind.singular + " nothing refers to"},
               "host");
  }

  // Contacts and subscriptions live inside the customer; these routes edit that list.
  for (const std::string list_name : {"contacts", "subscriptions"}) {
    router.add({"GET", "/api/v1/customers/{id}/" + list_name, "viewer",
                [this, list_name](const Request& req) {
                  auto item = get(kind("customers"), req.params.at("id"));
                  if (!item) throw NotFound("no customer '" + req.params.at("id") + "'");
                  return Response::json({{list_name, item->value(list_name, Json::array())}});
                },
                "the customer's " + list_name},
               "host");
    router.add({"POST", "/api/v1/customers/{id}/" + list_name, "service_manager",
                [this, list_name](const Request& req) {
                  Json entry = parse_body_object(req);
                  std::vector<FieldError> errors;
                  if (list_name == "contacts")
                    contact_from_json(entry, "$", errors);
                  else
                    subscription_from_json(entry, "$", errors);
                  throw_if_errors(errors);
                  auto actor = actor_of(req);
                  Json stored;
                  writer_.submit([&](Tx& tx) {
                    const auto& k = kind("customers");
                    auto rows = tx.query("SELECT body FROM core_customers WHERE id = ?",
                                         {req.params.at("id")});
                    if (rows.empty()) throw NotFound("no customer '" + req.params.at("id") + "'");
                    Json customer = Json::parse(rows[0].text(0));
                    if (!customer.contains(list_name)) customer[list_name] = Json::array();
                    customer[list_name].push_back(entry);
                    // The customer is checked whole; what is wrong with the new entry is named
                    // at the request's paths ("$.service"), not at its place in the customer.
                    const std::string added = "$." + list_name + "[" +
                                              std::to_string(customer[list_name].size() - 1) + "]";
                    try {
                      auto record = parse(k, customer, "$");
                      write(tx, actor, k, record, false);
                      stored = record.body;
                    } catch (const ValidationError& e) {
                      std::vector<FieldError> named;
                      for (auto error : e.errors()) {
                        if (error.path.starts_with(added))
                          error.path = "$" + error.path.substr(added.size());
                        named.push_back(std::move(error));
                      }
                      throw ValidationError(named);
                    }
                  });
                  return Response::json(stored, 201);
                },
                "add a " + list_name.substr(0, list_name.size() - 1) + " to the customer"},
               "host");
  }

  router.add({"GET", "/api/v1/tickets", "customer|viewer",
              [this](const Request& req) {
                // The route admits `viewer` (every ticket) or a customer token (its own).
                const std::string own =
                    req.principal.has_role("viewer") ? "" : req.principal.customer();
                const std::string breached = req.query_param("breached");
                if (!breached.empty() && breached != "true" && breached != "false") {
                  throw ValidationError("breached", "'" + breached + "' is not true or false");
                }
                only_query(req, {"breached", "limit"});
                const std::int64_t limit = req.query_limit(100, 1000);
                Json items = Json::array();
                const Instant now = clock_.now();
                const auto filter =
                    breached.empty() ? std::nullopt : std::optional<bool>(breached == "true");
                for (const auto& t : list_tickets(own, limit, filter))
                  items.push_back(ticket_to_json(t, false, now));
                return Response::json({{"tickets", items}});
              },
              "tickets, newest first (a customer token sees its own; ?breached=true: first "
              "response late or overdue; ?breached=false: the others)"},
             "host");
  router.add({"POST", "/api/v1/tickets", "customer|operator",
              [this](const Request& req) {
                Json body = parse_body_object(req);
                std::vector<FieldError> errors;
                ObjectReader in(body, "$", errors);
                Ticket t;
                read_ticket_fields(in, t, true);
                t.queue = in.optional_string("queue").value_or("default");
                t.customer = in.optional_string("customer").value_or("");
                t.requester = in.optional_string("requester").value_or(req.principal.name);
                t.external_ref = in.optional_string("external_ref").value_or("");
                auto text = in.optional_string("body", EmptyString::allow);
                in.finish();
                throw_if_errors(errors);
                auto own = req.principal.customer();
                const bool customer_only = !own.empty() && !req.principal.has_role("operator");
                if (customer_only) {
                  if (!t.customer.empty() && t.customer != own)
                    throw ValidationError("$.customer",
                                          "a customer token files tickets for '" + own + "' only");
                  t.customer = own;
                  // Staff fields: a customer's ticket starts new, its external_ref would
                  // thread another system's mail about that record (a ServiceNow incident
                  // number, say) onto the customer's ticket, and its requester is the token's.
                  std::vector<FieldError> staff;
                  for (const char* key : {"status", "external_ref", "requester"}) {
                    if (body.contains(key))
                      staff.push_back({std::string("$.") + key,
                                       "set by staff; a customer token cannot set it"});
                  }
                  if (!staff.empty()) throw ValidationError(staff);
                }
                if (text) t.messages.push_back({0, "in", t.requester, *text, "", {}});
                auto actor = actor_of(req);
                Ticket created;
                writer_.submit([&](Tx& tx) {
                  if (!t.customer.empty() &&
                      tx.query("SELECT 1 FROM core_customers WHERE id = ?", {t.customer}).empty())
                    throw ValidationError("$.customer", "unknown customer '" + t.customer + "'");
                  // A customer files into the queues staff made, not new ones.
                  if (customer_only && body.contains("queue") &&
                      tx.query("SELECT 1 FROM ticket_queues WHERE name = ?", {t.queue}).empty())
                    throw ValidationError("$.queue", "unknown queue '" + t.queue + "'");
                  created = create(tx, actor, t);
                });
                auto r = Response::json(ticket_to_json(created, true), 201);
                r.headers.emplace_back("Location", "/api/v1/tickets/" + created.id);
                return r;
              },
              "open a ticket; it gets a case number"},
             "host");
  router.add({"GET", "/api/v1/tickets/{id}", "customer|viewer",
              [this](const Request& req) {
                auto t = find(req.params.at("id"));
                if (!t) throw NotFound("no ticket '" + req.params.at("id") + "'");
                check_ticket_access(req, *t);
                // Notes are for staff: a customer reads its ticket without them.
                if (!req.principal.customer().empty() && !req.principal.has_role("viewer"))
                  std::erase_if(t->messages,
                                [](const TicketMessage& m) { return m.direction == "note"; });
                return Response::json(ticket_to_json(*t, true, clock_.now()));
              },
              "a ticket with its messages"},
             "host");
  router.add({"PATCH", "/api/v1/tickets/{id}", "operator",
              [this](const Request& req) {
                Json body = parse_body_object(req);
                auto actor = actor_of(req);
                Ticket updated;
                writer_.submit([&](Tx& tx) {
                  auto t = find(req.params.at("id"));
                  if (!t) throw NotFound("no ticket '" + req.params.at("id") + "'");
                  const Ticket before = *t;
                  std::vector<FieldError> errors;
                  ObjectReader in(body, "$", errors);
                  read_ticket_fields(in, *t, false);
                  in.finish();
                  throw_if_errors(errors);
                  // Nothing to change: no audit row, no event, no new updated_at.
                  if (std::tie(t->subject, t->kind, t->status, t->priority) ==
                      std::tie(before.subject, before.kind, before.status, before.priority)) {
                    updated = before;
                    return;
                  }
                  update(tx, actor, *t);
                  updated = *find(t->id);  // as stored: updated_at, the first-response target
                });
                return Response::json(ticket_to_json(updated, false, clock_.now()));
              },
              "change a ticket's subject, kind, status or priority"},
             "host");
  router.add({"POST", "/api/v1/tickets/{id}/messages", "customer|operator",
              [this](const Request& req) {
                auto t = find(req.params.at("id"));
                if (!t) throw NotFound("no ticket '" + req.params.at("id") + "'");
                check_ticket_access(req, *t, "operator");
                Json body = parse_body_object(req);
                std::vector<FieldError> errors;
                ObjectReader in(body, "$", errors);
                TicketMessage m;
                m.body = in.required_string("body");
                m.direction = in.optional_string("direction").value_or("in");
                if (m.direction != "in" && m.direction != "out")
                  in.error("direction", "'" + m.direction + "' is not in or out");
                // An outgoing message is the provider's answer, which meets the ticket's
                // first-response target: a customer's own message is incoming.
                if (m.direction == "out" && !req.principal.customer().empty() &&
                    !req.principal.has_role("operator"))
                  in.error("direction", "a customer token writes incoming messages ('in') only");
                in.finish();
                throw_if_errors(errors);
                m.author = req.principal.name;
                auto actor = actor_of(req);
                TicketMessage stored;
                writer_.submit([&](Tx& tx) { stored = add_message(tx, actor, t->id, m); });
                return Response::json({{"id", stored.id}, {"ticket", t->id}}, 201);
              },
              "add a message to a ticket"},
             "host");

  router.add({"POST", "/api/v1/import", "admin",
              [this](const Request& req) {
                auto result = import(actor_of(req), req.json());
                return Response::json({{"created", result.created},
                                       {"updated", result.updated},
                                       {"unchanged", result.unchanged}});
              },
              "upsert a dataset (DESIGN.md §5.3): all or nothing"},
             "host");
  router.add({"GET", "/api/v1/audit", "admin",
              [this](const Request& req) {
                only_query(req, {"entity", "limit"});
                return Response::json(
                    {{"audit", audit(req.query_param("entity"), req.query_limit(100, 10000))}});
              },
              "the audit log, newest first (?entity=, ?limit=)"},
             "host");
}

}  // namespace slmhub::host
