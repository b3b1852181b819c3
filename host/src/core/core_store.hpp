// The host-owned core entities (DESIGN.md §3): services, customers (with contacts and
// subscriptions), calendars, interruptions, maintenance windows, tickets and their
// messages, the dataset settings, and the audit log. Every write validates with the SDK
// codecs, checks references against the store, writes an audit row and an event in the
// same transaction, and goes through the group committer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/group_commit.hpp"
#include "slmhub/catalog.hpp"
#include "slmhub/events.hpp"
#include "slmhub/http.hpp"
#include "slmhub/log.hpp"

namespace slmhub::host {

class Router;
class EventBus;

// One kind of core entity, described once; the CRUD routes, the import and the audit all
// work from this table.
struct EntityKind {
  std::string plural;      // path segment and table suffix: "interruptions"
  std::string singular;    // event and audit name: "interruption"
  std::string write_role;  // role that may create, change and delete
  std::string created_event;
  std::string updated_event;
};

// A validated entity ready to store.
struct EntityRecord {
  std::string id;
  Json body;               // canonical JSON (the codec's to_json); null for interruptions
  std::string text;        // the canonical JSON's text, made once on the request thread
  std::string event_text;  // the events' payload: {"kind", "id", "service"?}
  std::optional<std::string> service;
  std::optional<std::int64_t> start_at;
  std::optional<std::int64_t> end_at;
  // References to check against the store: (kind plural, id, JSON path).
  std::vector<std::tuple<std::string, std::string, std::string>> refs;
  std::string path;  // where it was in the input ("$", "$.maintenance[3]"), for errors
};

// A ticket as the API shows it; messages only when asked for.
// With `now`, also `first_response_breached`: answered late, or not answered and overdue.
Json ticket_to_json(const Ticket& ticket, bool with_messages,
                    std::optional<Instant> now = std::nullopt);

struct ImportResult {
  int created = 0;
  int updated = 0;
  int unchanged = 0;
};

// First-response targets by ticket kind, in business time (DOMAIN.md §7); a kind without one
// has no target.
struct ResponseTargets {
  std::chrono::seconds incident{30 * 60};
  std::chrono::seconds service_request{9 * 3600};  // one business day of 08:00-17:00
};

class CoreStore : public Catalog, public Tickets {
 public:
  CoreStore(Store& store, EventBus& events, const Clock& clock);
  void set_response_targets(ResponseTargets targets) { targets_ = targets; }

  static const std::vector<EntityKind>& kinds();
  static const EntityKind& kind(const std::string& plural);
  // Validates `body` as an entity of `kind`; ValidationError with JSON paths.
  static EntityRecord parse(const EntityKind& kind, const Json& body, const std::string& path);
  // The same for a request's body ("$"). An interruption, the one entity written at rates
  // where it matters, is read straight from the text when it can be (try_read_interruption).
  static EntityRecord parse(const EntityKind& kind, const Request& request);

  void start_writer(int max_batch) { writer_.start(max_batch); }
  void stop_writer() { writer_.stop(); }
  GroupCommitter& writer() { return writer_; }

  // Creates (409 if the id exists) or upserts an entity; returns whether it changed.
  bool write(Tx& tx, const Actor& actor, const EntityKind& kind, const EntityRecord& record,
             bool create_only);
  void remove(Tx& tx, const Actor& actor, const EntityKind& kind, const std::string& id);
  std::optional<Json> get(const EntityKind& kind, const std::string& id) const;
  std::vector<Json> list(const EntityKind& kind, const std::optional<std::string>& service) const;

  // The whole dataset in one transaction: everything or nothing.
  ImportResult import(const Actor& actor, const Json& dataset);

  Json audit(const std::string& entity, std::int64_t limit) const;
  void add_routes(Router& router);
  std::string stored_text(const EntityKind& kind, const EntityRecord& record) const;

  // Catalog
  Dataset snapshot() const override;
  std::optional<Service> service(const std::string& id) const override;
  std::optional<Customer> customer(const std::string& id) const override;
  std::optional<Interruption> interruption(const std::string& id) const override;
  std::optional<MaintenanceWindow> maintenance(const std::string& id) const override;
  BusinessCalendar provider_calendar() const override;
  void record_interruption(Tx& tx, const Actor& actor, const Interruption& item) override;
  bool remove_interruption(Tx& tx, const Actor& actor, const std::string& id) override;
  void audit(Tx& tx, const Actor& actor, const std::string& action, const std::string& entity,
             const std::string& id, const Json& before, const Json& after) override;
  void record_maintenance(Tx& tx, const Actor& actor, const MaintenanceWindow& item) override;
  void set_maintenance_policy(MaintenancePolicy policy) override;
  // Drops the policy (before the plugin that set it stops).
  void clear_maintenance_policy();
  // When a ticket of `kind` that arrived at `arrived` is due its first response (business time
  // of the provider calendar), or nullopt when its kind has no target.
  std::optional<Instant> response_due(const std::string& kind, Instant arrived) const;

  // Tickets
  Ticket create(Tx& tx, const Actor& actor, Ticket ticket) override;
  TicketMessage add_message(Tx& tx, const Actor& actor, const std::string& ticket_id,
                            TicketMessage message) override;
  std::optional<Ticket> find(const std::string& id) const override;
  std::optional<Ticket> find_fields(const std::string& id) const override;
  std::optional<Ticket> find_by_external_ref(const std::string& ref) const override;
  void update(Tx& tx, const Actor& actor, const Ticket& ticket) override;
  void define_queue(Tx& tx, const std::string& name, const std::string& prefix) override;
  // `breached` true: only tickets whose first response came late or is overdue now; false:
  // only the others; nullopt: all.
  std::vector<Ticket> list_tickets(const std::string& customer, std::int64_t limit,
                                   std::optional<bool> breached = std::nullopt) const;
  // One pass of the first-response watch: each ticket whose target passed without a
  // response is escalated once (`ticket.response_missed`, an e-mail per `escalate` address
  // through `outbox`). Returns a one-line summary.
  std::string watch_responses(Outbox& outbox, const std::vector<std::string>& escalate);

 private:
  // Stores a message of a ticket known to exist, with its audit row and event; the caller
  // keeps the ticket's updated_at and responded_at right.
  TicketMessage insert_message(Tx& tx, const Actor& actor, const std::string& ticket_id,
                               TicketMessage message);
  // `before` and `after` are serialized JSON; "" stores NULL.
  // `after_is_next`: `after` is not stored because it is the entity's body in its own table
  // (see migration 2); audit() puts it back.
  // The window after the maintenance policy, re-encoded when the policy changed it.
  MaintenanceContext maintenance_context(Tx& tx, const MaintenanceWindow& window) const;
  static EntityRecord interruption_record(const Interruption& value, const std::string& path);
  static std::string event_text(const EntityKind& kind, const EntityRecord& record);
  EntityRecord apply_maintenance_policy(Tx& tx, const EntityRecord& record,
                                        const std::string& before);
  void write_audit(Tx& tx, const Actor& actor, const std::string& action, const std::string& entity,
                   const std::string& id, const std::string& before, const std::string& after,
                   bool after_is_next = false);
  Json current_body(const std::string& singular, const std::string& id) const;

  Store& store_;
  ResponseTargets targets_;
  EventBus& events_;
  const Clock& clock_;
  GroupCommitter writer_;
  // Set once at start-up while other plugins' threads may already write; held shared for
  // each call, so clearing it (before its plugin stops) waits for the calls under way.
  mutable std::shared_mutex policy_mutex_;
  std::shared_ptr<const MaintenancePolicy> maintenance_policy_;
  // The provider calendar, read and parsed once and kept for kCalendarTtl: every new ticket's
  // first-response target, every deadline and export asks for it. A calendar write or an
  // import here forgets it (a read racing the write's transaction may keep the old one, as
  // another instance's write is, for the TTL at most).
  void forget_calendar() const;
  mutable std::mutex calendar_mutex_;
  mutable std::optional<BusinessCalendar> calendar_;
  mutable std::chrono::steady_clock::time_point calendar_read_{};
};

}  // namespace slmhub::host
