// Service Interruption Analyses (DOMAIN.md §6): one per interruption that took an SLA service
// down, drafted automatically when the interruption ends, with sections A-E as structured
// JSON, and moved draft → submitted → approved (deputy director) → published, each step
// audited. The SIA is due 15 business days after the interruption ends (provider calendar);
// the due date lives in the host's deadline service, which warns and escalates.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "documents.hpp"
#include "slmhub/catalog.hpp"
#include "slmhub/deadlines.hpp"
#include "slmhub/events.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/store.hpp"
#include "slmhub/time.hpp"

namespace slmhub::workflows {

struct Sia {
  std::string id;  // the interruption's incident number: one SIA per interruption
  std::string service;
  // draft, submitted, approved, published; withdrawn while its interruption needs no SIA
  std::string state;
  std::string due_date;  // YYYY-MM-DD in the provider calendar
  Instant due{};         // the end of that local day
  // The interruption as the store has it (section A's dates, times and duration, and what
  // section A was drafted from: its description and the customers impacted), followed until
  // the SIA is approved; not editable.
  Json facts;
  Json sections;  // {"a": {...}, ..., "e": {...}}, each as last written
  // {"drafted": {"by", "at"}, "submitted": ..., "returned": {.., "reason"}, "withdrawn": ...}
  Json steps;
  Instant created_at{};
  Instant updated_at{};
};

// The SIA as the HTTP API and the `sia.published` event show it, with `missing`: what must
// still be written before it can be approved.
Json sia_json(const Sia& sia);

// Reads one section's body strictly (unknown keys and wrong types are errors naming the
// JSON path under `$`). Every field may be left out while the SIA is a draft; approval
// asks for them (missing_fields). Returns the section normalized (instants as `…Z`).
// Throws ValidationError; NotFound for a letter other than a-e.
Json parse_section(const std::string& letter, const Json& body);

// What approval still needs, one entry per field, in section order: path "b.source",
// "d.corrective_actions[0].owner", ...
std::vector<FieldError> missing_fields(const Json& sections);

class SiaBook {
 public:
  // `distribution`: the addresses a published SIA is e-mailed to (may be empty).
  // `account_team`: when set, a published SIA also goes to the outage and primary technical
  // contacts of each impacted customer, from that address; when empty the account team
  // forwards it by hand.
  SiaBook(Store& store, Catalog& catalog, Events& events, Outbox& outbox, Deadlines& deadlines,
          Attachments& attachments, const Clock& clock, Logger& log,
          std::vector<std::string> distribution, std::string account_team = {});

  static std::vector<Migration> migrations();

  // Subscribes the durable cursor "workflows.sia" to the interruptions' events, each handled
  // by follow().
  void subscribe();

  enum class Followed { unchanged, drafted, refreshed, withdrawn };
  // Brings the SIA of interruption `id` in line with it. An ended outage needs one (DOMAIN.md
  // §6): it is drafted if there is none, and until it is approved its facts, due date and
  // section A's drafted fields follow the interruption (a corrected end moves the due date),
  // a withdrawn one coming back as a draft. An interruption that needs none (a degradation,
  // reopened, deleted) withdraws its SIA before approval, its deadline met and its sections kept.
  // An approved or published SIA is left as it was signed off. Delivery is at least once: a second
  // call changes nothing.
  Followed follow(const std::string& interruption_id);

  std::vector<Sia> list(const std::string& state, const std::string& service) const;
  std::optional<Sia> find(const std::string& id) const;

  // Replaces one section (letter a-e) of a draft. Section E may carry the restoration notice
  // as sent, `attachment` {name, content_type, content_base64}: it is stored whole (owner
  // "sia/<id>") and the section keeps its id, name, type, size and SHA-256.
  Sia write_section(const Actor& actor, const std::string& id, const std::string& letter,
                    const Json& body);
  Sia submit(const Actor& actor, const std::string& id);
  // A Problem (422) listing every missing field when the SIA is incomplete; nothing changes.
  Sia approve(const Actor& actor, const std::string& id);
  Sia return_to_draft(const Actor& actor, const std::string& id, const std::string& reason);
  // Writes `sia.published`, one e-mail per distribution address, and meets the deadline.
  // Publication also makes each open corrective action of section D a deadline
  // (`sia/<id>/action/<n>`, owner service_manager, the action's owner told when it is an
  // address), due at the end of its due day in the provider calendar.
  Sia publish(const Actor& actor, const std::string& id);
  // Records that corrective action `n` (from 0) of a published SIA was carried out: the
  // action gets done/done_at/done_by and its deadline is met. Conflict before publication
  // (a draft is edited instead) or when it is done already; NotFound for no such action.
  Sia complete_action(const Actor& actor, const std::string& id, std::size_t n);

 private:
  struct Move {
    const char* action;    // for the audit log: "submit", "approve", ...
    const char* from;      // the state it starts from
    const char* to;        // the state it reaches
    const char* step_key;  // where `steps` records it
  };
  // Moves `id` in one transaction; `effects(tx, sia)` runs with the moved SIA before the
  // commit and may throw to refuse the move.
  Sia advance(const Actor& actor, const std::string& id, const Move& move, const Json& extra,
              const std::function<void(Tx&, const Sia&)>& effects);
  // Inserts the SIA of an ended outage; false when it exists already.
  bool draft(const Interruption& inc);

  Store& store_;
  Catalog& catalog_;
  Events& events_;
  Outbox& outbox_;
  Deadlines& deadlines_;
  Attachments& attachments_;
  const Clock& clock_;
  Logger& log_;
  std::vector<std::string> distribution_;
  std::string account_team_;
};

}  // namespace slmhub::workflows
