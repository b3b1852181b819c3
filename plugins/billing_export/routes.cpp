// The HTTP side of billing: inputs (rate cards, time entries, on-call requests, import), the
// credits billing received, invoice runs, invoices and credit notes, exports and estimates.
// Every route is in docs/openapi.yaml.
#include "atomic_dir.hpp"
#include "billing.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::billing {
namespace {

Actor actor_of(const Request& req) { return Actor{"token:" + req.principal.id}; }

// The body's "month" (such as "2026-11"); a neutral value when it is missing or malformed
// (reported in `r`'s errors).
date::year_month read_month(ObjectReader& r) {
  const std::string text = r.required_string("month");
  if (!text.empty()) {
    try {
      return parse_month(text);
    } catch (const std::exception& e) {
      r.error("month", e.what());
    }
  }
  return {};
}

std::string month_filter(const Request& req) {
  const std::string month = req.query_param("month");
  if (!month.empty()) {
    try {
      parse_month(month);
    } catch (const std::exception& e) {
      throw ValidationError("?month", e.what());
    }
  }
  return month;
}

Json run_json(const RunResult& r) {
  return {{"month", r.month},
          {"finalised", r.finalised},
          {"invoices", r.invoices},
          {"total_cents", r.total_cents},
          {"numbers_assigned", r.numbers}};
}

}  // namespace

void Billing::add_routes(HttpRoutes& http) {
  http.add({"GET", "/api/v1/rate-cards", "billing",
            [this](const Request&) { return Response::json(rate_cards_json()); },
            "the rate cards, oldest first: hourly rate, on-call week, offerings, valid from"});
  http.add({"POST", "/api/v1/rate-cards", "billing",
            [this](const Request& req) {
              return Response::json(put_rate_card(actor_of(req), req.json(), ""), 201);
            },
            "add or replace a rate card (a mid-year change re-issues the estimates it changes)"});
  http.add({"PUT", "/api/v1/rate-cards/{id}", "billing",
            [this](const Request& req) {
              return Response::json(put_rate_card(actor_of(req), req.json(), req.params.at("id")));
            },
            "replace the rate card {id}"});

  http.add({"GET", "/api/v1/time-entries", "billing",
            [this](const Request& req) {
              return Response::json(
                  time_entries_json(req.query_param("customer"), month_filter(req)));
            },
            "time entries (?customer=, ?month=), with the invoice that billed each"});
  http.add({"POST", "/api/v1/time-entries", "operator",
            [this](const Request& req) {
              return Response::json(add_time_entry(actor_of(req), req.json()), 201);
            },
            "record work for a customer: date, minutes, description, ticket, kind"});
  http.add({"DELETE", "/api/v1/time-entries/{id}", "billing",
            [this](const Request& req) {
              delete_time_entry(actor_of(req), req.params.at("id"));
              return Response::no_content();
            },
            "delete a time entry that is not billed yet"});

  http.add({"GET", "/api/v1/oncall-requests", "billing",
            [this](const Request& req) {
              return Response::json(oncall_requests_json(req.query_param("customer")));
            },
            "on-call requests (?customer=)"});
  http.add({"POST", "/api/v1/oncall-requests", "operator",
            [this](const Request& req) {
              return Response::json(add_oncall_request(actor_of(req), req.json()), 201);
            },
            "request on-call: at least 21 days ahead, at most 14 days (refused with the rule)"});
  http.add({"POST", "/api/v1/oncall-requests/{id}/cancel", "operator",
            [this](const Request& req) {
              return Response::json(cancel_oncall_request(actor_of(req), req.params.at("id")));
            },
            "cancel an on-call request before it starts"});

  http.add(
      {"POST", "/api/v1/billing/import", "billing",
       [this](const Request& req) { return Response::json(import(actor_of(req), req.json())); },
       "import rate cards, time entries and on-call requests (all or nothing, idempotent)"});
  http.add({"GET", "/api/v1/billing/credits", "billing",
            [this](const Request& req) {
              return Response::json(credits_json(req.query_param("customer")));
            },
            "approved SLA credits and dispute adjustments billing received, with their invoice"});

  http.add({"POST", "/api/v1/invoices/run", "billing",
            [this](const Request& req) {
              const Json body = req.json();
              std::vector<FieldError> errors;
              ObjectReader r(body, "$", errors);
              const auto month = read_month(r);
              const bool finalise = r.optional_bool("finalise").value_or(false);
              r.finish();
              throw_if_errors(std::move(errors));
              return Response::json(run_json(run(actor_of(req), month, finalise)));
            },
            "compute a month's draft invoices, or finalise them ({month, finalise})"});
  http.add({"GET", "/api/v1/invoices", "billing",
            [this](const Request& req) {
              return Response::json(invoices_json(month_filter(req), req.query_param("customer"),
                                                  req.query_param("state")));
            },
            "invoices and credit notes (?month=, ?customer=, ?state=draft|final)"});
  http.add(
      {"GET", "/api/v1/invoices/{number}", "billing",
       [this](const Request& req) { return Response::json(invoice_json(req.params.at("number"))); },
       "one invoice or credit note, each line with its sources"});
  http.add({"POST", "/api/v1/invoices/{number}/credit-notes", "billing",
            [this](const Request& req) {
              return Response::json(
                  add_credit_note(actor_of(req), req.params.at("number"), req.json()), 201);
            },
            "correct a finalised invoice with a credit note ({reason, lines})"});

  http.add({"POST", "/api/v1/exports", "billing",
            [this](const Request& req) {
              const Json body = req.json();
              std::vector<FieldError> errors;
              ObjectReader r(body, "$", errors);
              const auto month = read_month(r);
              std::vector<std::string> formats = settings_.export_formats;
              if (r.has("formats")) formats = r.optional_string_list("formats");
              r.finish();
              throw_if_errors(std::move(errors));
              try {
                return Response::json(
                    export_month(actor_of(req), month, formats, settings_.export_dir).record, 201);
              } catch (const files::WriteError& e) {
                // The server's own place (export.dir) refused the files: say what and where,
                // not only in the log, since whoever exports is the one to have it fixed.
                throw Problem(500, "Export Not Written", e.what());
              }
            },
            "finalise a month and write its files for accounting into the export directory"});
  http.add({"GET", "/api/v1/exports", "billing",
            [this](const Request&) { return Response::json(exports_json()); },
            "export runs: month, files with SHA-256, who and when"});
  http.add({"GET", "/api/v1/exports/{id}", "billing",
            [this](const Request& req) {
              std::int64_t id = 0;
              try {
                id = std::stoll(req.params.at("id"));
              } catch (const std::exception&) {
                throw NotFound("no export '" + req.params.at("id") + "'");
              }
              return Response::json(export_json(id));
            },
            "one export run"});

  http.add({"GET", "/api/v1/estimates", "billing",
            [this](const Request& req) {
              return Response::json(
                  estimates_json(req.query_param("fiscal_year"), req.query_param("customer")));
            },
            "annual cost estimates, every revision (?fiscal_year=, ?customer=)"});
  http.add({"POST", "/api/v1/estimates/run", "billing",
            [this](const Request&) {
              return Response::json({{"outcome", run_estimates(clock_.now())}});
            },
            "issue due estimates and re-issue changed ones now (what the daily job does)"});
}

}  // namespace slmhub::billing
