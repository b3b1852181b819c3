// Chargeback billing (issue [billing], DOMAIN.md §9, docs/billing.md): the inputs (rate cards,
// time entries, on-call requests, credits from `credit.approved` / `credit.adjusted`), the
// monthly invoice run with gapless numbers assigned at finalisation, credit notes, the export
// to accounting (CSV, UBL 2.1, a manifest) and the annual cost estimate.
//
// An invoice is a stored JSON document. A draft is recomputed by every run; a finalised one is
// never changed again (corrections are credit notes), and every export of its month writes it
// from the stored document, so the files come out byte for byte the same.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "document.hpp"
#include "engine.hpp"
#include "slmhub/catalog.hpp"
#include "slmhub/events.hpp"
#include "slmhub/http.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"

namespace slmhub::billing {

inline constexpr const char* kEmailChannel = "billing_export.email";

struct Settings {
  std::string currency = "USD";
  files::Party supplier{"PROVIDER", "Service provider", ""};
  int payment_terms_days = 30;
  int final_invoice_days = 14;  // DOMAIN.md §9: the final invoice is due within 14 days
  std::filesystem::path export_dir = "var/exports";
  std::int64_t included_minutes_per_year = kIncludedMinutesPerYear;
  std::int64_t significant_basis_points = 1000;
  int estimate_months_before = 3;  // "no later than 3 months prior to the next fiscal year"
  std::vector<std::string> export_formats{"csv", "ubl"};  // of POST /api/v1/exports and the job
};

// Receives the documents a finalising run stores, in number order, while it runs; restart()
// when the transaction runs again (after a serialization failure) and what came before is void.
class DocumentSink {
 public:
  virtual ~DocumentSink() = default;
  virtual void restart() = 0;
  virtual void add(files::Document document) = 0;
};

struct RunResult {
  std::string month;
  bool finalised = false;
  bool final_before = false;  // final before this run, which computed and changed nothing
  std::int64_t invoices = 0;
  std::int64_t total_cents = 0;
  std::vector<std::string> numbers;  // assigned by this run
};

struct ExportResult {
  Json record;  // the export run as GET /api/v1/exports/{id} shows it
  std::filesystem::path directory;
  bool written = false;  // false: the files on disk were already identical
};

class Billing {
 public:
  Billing(Store& store, Catalog& catalog, Events& events, Outbox& outbox, const Clock& clock,
          Logger& log, Settings settings);

  static std::vector<Migration> migrations();
  // "billing_export.credits": credit.approved and credit.adjusted become credit lines.
  void subscribe();
  void add_routes(HttpRoutes& http);

  // Inputs. Each validates everything first and changes nothing on an error.
  Json put_rate_card(const Actor& actor, const Json& body, const std::string& id_from_path);
  Json add_time_entry(const Actor& actor, const Json& body);
  void delete_time_entry(const Actor& actor, const std::string& id);
  Json add_oncall_request(const Actor& actor, const Json& body);
  Json cancel_oncall_request(const Actor& actor, const std::string& id);
  // {rate_cards[], time_entries[], oncall_requests[]}: all or nothing; entries with an id
  // already present are left as they are (a re-import changes nothing).
  Json import(const Actor& actor, const Json& body);

  std::vector<RateCard> rate_cards() const;
  Json rate_cards_json() const;
  Json time_entries_json(const std::string& customer, const std::string& month) const;
  Json oncall_requests_json(const std::string& customer) const;
  Json credits_json(const std::string& customer) const;

  // Computes the month's invoices (drafts, replaced by each run) or finalises them: gapless
  // numbers per fiscal year in customer order, sources marked as billed. A month already
  // finalised is not computed again. Conflict when a later month is final, or, to finalise,
  // when the month is not over or the month before it (once billing has begun) is not final.
  RunResult run(const Actor& actor, date::year_month month, bool finalise);
  Json invoices_json(const std::string& month, const std::string& customer,
                     const std::string& state) const;
  // By number ("INV-FY2027-000001", "CN-…") or, for a draft, by id ("2026-11:registrar").
  Json invoice_json(const std::string& key) const;
  // A credit note correcting a finalised invoice: {reason, lines: [{description, amount_cents}]}.
  Json add_credit_note(const Actor& actor, const std::string& invoice_number, const Json& body);

  // Finalises the month if needed and writes <out>/invoices-YYYY-MM/ atomically: the CSV, one
  // UBL file per document and manifest.json. Recorded with who and when.
  ExportResult export_month(const Actor& actor, date::year_month month,
                            const std::vector<std::string>& formats,
                            const std::filesystem::path& out);
  // The monthly job: finalises and exports the month before `now` into settings().export_dir,
  // and exports every other final month that no export has recorded (the process stopped
  // between the commit and the files, the disk was full, or it was finalised through the API).
  // Returns a one-line outcome; throws once every month was tried if one of them failed.
  std::string export_due(Instant now);
  Json exports_json() const;
  Json export_json(std::int64_t id) const;

  // The daily estimate job: issues the next fiscal year's estimates once `today` is within
  // estimate_months_before months of it, and re-issues (a new revision) every issued estimate
  // whose figures a rate card change has changed. Returns a one-line outcome.
  std::string run_estimates(Instant now);
  Json estimates_json(const std::string& fiscal_year, const std::string& customer) const;

  // The previous month, in the provider's zone (for the monthly export job).
  date::year_month previous_month(Instant now) const;
  const Settings& settings() const { return settings_; }

 private:
  struct Context;
  Context context() const;
  // run() with run_mutex_ held; when it finalises, `sink` (if any) gets each document stored.
  RunResult run_locked(const Actor& actor, date::year_month month, bool finalise,
                       DocumentSink* sink);
  // The month's final documents: invoices by number, then credit notes by number.
  std::vector<files::Document> documents_of(const std::string& month, bool credit_notes_only) const;
  void recheck_estimates(const std::string& cause);
  void issue_estimates(Tx& tx, const Context& ctx, int fiscal_year, Instant now, bool first_issue,
                       int& issued, int& revised);

  Store& store_;
  Catalog& catalog_;
  Events& events_;
  Outbox& outbox_;
  const Clock& clock_;
  Logger& log_;
  Settings settings_;
  std::mutex run_mutex_;  // one invoice run or export at a time in this process
};

// The stored invoice document as the file writers take it.
files::Document to_document(const Json& stored);

}  // namespace slmhub::billing
