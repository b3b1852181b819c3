// The monthly Service Availability Report as a document with owners (DOMAIN.md §5): each
// month has numbered revisions; a revision moves draft → reviewed (service owners) →
// approved (deputy directors) → published, each step audited. A revision's figures are
// computed once, when it is drafted, and stored with the details the page needs, so a
// published report never changes when interruptions, maintenance or calendars do;
// recomputing makes a new draft revision that lists what moved.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::availability {

struct Revision {
  std::string month;  // YYYY-MM
  std::int64_t number = 0;
  std::string state;  // draft, reviewed, approved, published
  bool latest = false;
  std::optional<Instant> as_of;  // set when drafted before the month closed
  Instant computed_at{};
  std::string due_date;           // YYYY-MM-DD: 15 business days after the month closes
  std::string analysis_deadline;  // YYYY-MM-DD: 30 calendar days after the month closes
  Json document;                  // the detailed report (report_to_json with details)
  Json changes;                   // against the previous revision; [] for the first
  Json steps;                     // {"drafted": {"by", "at"}, "reviewed": ..., ...}
};

// Summary JSON (no document) and full JSON of a revision for the HTTP API.
Json revision_summary_json(const Revision& revision);
Json revision_json(const Revision& revision);

enum class Step { review, approve, publish };

class ReportBook {
 public:
  ReportBook(Store& store, Catalog& catalog, Events& events, Deadlines& deadlines,
             const Clock& clock, Logger& log);

  static std::vector<Migration> migrations();

  // Computes `month` from the store now. Returns the new draft revision (created = true), or
  // the latest revision when its figures are the same (created = false), so a repeated run
  // of the monthly job adds nothing. A month that has not begun is a ValidationError. The
  // month's report and analysis deadlines go to the host's deadline service, which warns
  // and escalates. Drafts run one at a time in this process: one that read the store before
  // a catalog edit cannot land after, and stand as the latest revision over, one that read it
  // after.
  struct Drafted {
    Revision revision;
    bool created;
  };
  Drafted draft(const Actor& actor, date::year_month month);

  // Moves the latest revision one step; Conflict when it is not in the step's starting state
  // or `number` is not the latest; NotFound when there is no such revision. A review meets
  // the month's analysis deadline, a publication its report deadline. Publishing writes
  // `report.published` and one `credit.computed` per credit row in the same transaction.
  Revision advance(const Actor& actor, date::year_month month, std::int64_t number, Step step);

  // A published SIA (the `sia.published` event of the workflows plugin), remembered so the
  // report's page can list the analyses related to each service's interruptions.
  void record_sia(const Json& sia);
  // service id → the published SIAs of the interruptions `document` lists for it.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> related_sias(
      const Json& document) const;

  // The months that have a revision, oldest first.
  std::vector<date::year_month> drafted_months() const;
  std::vector<Revision> revisions(date::year_month month) const;  // oldest first, no documents
  std::optional<Revision> revision(date::year_month month, std::int64_t number) const;
  std::optional<Revision> published(date::year_month month) const;  // the latest published

 private:
  std::optional<Revision> latest(Tx& tx, date::year_month month) const;

  Store& store_;
  Catalog& catalog_;
  Events& events_;
  Deadlines& deadlines_;
  const Clock& clock_;
  Logger& log_;
  std::mutex draft_mutex_;  // held from the snapshot to the commit of a draft
};

}  // namespace slmhub::availability
