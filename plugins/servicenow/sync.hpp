// Keeping slmhub and a ServiceNow instance in step (docs/servicenow.md has the rules).
//
// In:  a webhook is checked, committed to the inbox with a `servicenow.received` event in the
//      same transaction, and only then answered; a duplicate of one committed lately (table,
//      sys_id, sys_mod_count) is answered without a write. The event's handler skips a
//      version applied already, else re-reads the authoritative record from the Table API
//      and applies it. The reconciliation sweep reads every table by keyset and applies what is
//      newer. Applying is one function whatever the source: older or equal sys_mod_counts change
//      nothing, our own writes (our user, a sys_mod_count we wrote) are echoes.
// Out: ticket events put one message per change in the outbox (channel "servicenow"); its
//      sender reads the ticket as it is then and creates the incident (at most once, by
//      correlation_id) or patches what changed since the last sync (reading the incident
//      first, so a change there not seen yet is applied and judged before it could be
//      overwritten), and records the sys_mod_count it produced so the webhook that write
//      fires is dropped.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "client.hpp"
#include "slmhub/plugin.hpp"
#include "webhook.hpp"

namespace slmhub::servicenow {

struct SyncSettings {
  std::string integration_user;               // the user our writes appear as (sys_updated_by)
  std::string incident_queue = "servicenow";  // where incidents raised in ServiceNow go
  std::string incident_prefix = "SNI";
  std::set<std::string> outbound_kinds = {"incident", "service_request"};
  std::string close_code = "Solved (Permanently)";  // set when a ticket resolves there
  // The incident field ("true"/"1") that marks an incident as an outage ("" = none).
  std::string outage_field;
  // Incident state code → ticket status, and ticket status → the state code written
  // (SERVICENOW.md, Tables). Instances with states of their own override both.
  std::map<std::string, std::string> status_of_state = {{"1", "new"},     {"2", "open"},
                                                        {"3", "pending"}, {"6", "resolved"},
                                                        {"7", "closed"},  {"8", "closed"}};
  std::map<std::string, std::string> state_of_status = {
      {"new", "1"}, {"open", "2"}, {"pending", "3"}, {"resolved", "6"}, {"closed", "7"}};
  std::map<std::string, std::string> ci_services;  // cmdb_ci / business_service sys_id → service
  std::vector<std::string> sweep_tables = {"incident", "sys_journal_field", "cmdb_ci_outage",
                                           "change_request"};
  std::string sweep_since;  // "yyyy-MM-dd HH:mm:ss": where a first sweep starts ("" = all)
  // How far before its cursor each sweep starts again: an instance stamps sys_updated_on when
  // a transaction writes, and one that commits later than a sweep's read would be passed by.
  std::int64_t sweep_overlap_seconds = 120;
};

// The last `capacity` keys added, for a quick answer to "seen before?"; thread-safe.
class RecentKeys {
 public:
  explicit RecentKeys(std::size_t capacity) : capacity_(capacity) {}
  bool contains(const std::string& key) const;
  void add(const std::string& key);

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_set<std::string> keys_;
  std::deque<std::string> order_;  // oldest first
};

// What applying one record did.
enum class Applied { created, updated, unchanged, stale, echo, unmapped };
const char* applied_name(Applied a);

class Sync {
 public:
  // `client` may be null: nothing goes out and nothing is re-read (webhooks are still
  // committed and wait in the inbox).
  Sync(Host& host, SyncSettings settings, std::shared_ptr<Client> client);

  // Store migrations; call once in start().
  void migrate();

  // Commits a checked webhook; returns "accepted", "duplicate" or "echo".
  std::string receive(const InboundChange& change, const std::string& raw_body);

  // The `servicenow.received` handler: re-read and apply the inbox row `inbox_id`.
  void process_inbox(std::int64_t inbox_id);

  // Applies one record read from the API (webhook re-read or sweep), in its own transaction
  // or in the caller's.
  Applied apply(const std::string& table, const Record& record);
  Applied apply(Tx& tx, const std::string& table, const Record& record);

  // Ticket events → outbox messages (the `servicenow.outbound` subscriber).
  void on_ticket_event(const Event& event);
  // The outbox sender of channel "servicenow".
  void send(const OutboxMessage& message);
  // The ticket as it is now, written to its incident (created when it has none). `in_doubt`
  // is set when it throws after a write that may have been done.
  void send_ticket(const std::string& id, bool& in_doubt);

  // One sweep over every table; returns the job's one-line outcome.
  std::string sweep();
  // Deletes inbox rows processed, and marks of our writes made, more than `keep_days` ago.
  std::string prune(std::int64_t keep_days);

  Json status() const;
  Json conflicts(std::int64_t limit) const;

 private:
  struct Link;
  std::optional<Link> link_by_sys_id(Tx& tx, const std::string& table, const std::string& sys_id);
  // apply(), the sys_mod_count applied before (none: the record is new here) known already.
  Applied apply(Tx& tx, const std::string& table, const Record& record,
                std::optional<std::int64_t> applied);
  Applied apply_incident(Tx& tx, const Record& r, const std::optional<Link>& link);
  // incident ↔ ticket.
  Applied apply_ticket(Tx& tx, const Record& r, const std::optional<Link>& link);
  // A resolved incident flagged as an outage (settings_.outage_field) is an interruption of
  // its CI's service from opened_at to resolved_at; one whose flag is taken off, or whose CI
  // is no longer mapped, has its interruption withdrawn.
  void record_incident_outage(Tx& tx, const Record& r);
  // Deletes interruption `id`, when there is one, and logs why.
  void withdraw_interruption(Tx& tx, const std::string& id, const std::string& why);
  Applied apply_journal(Tx& tx, const Record& r);
  // An incident's synced field groups in our terms, as ours_of gives a ticket's.
  Json ours_in(const Record& r) const;
  // The synced state to merge an incident we created against when it is first linked to its
  // ticket (found by its correlation_id, or by the create that made it).
  Json synced_as_created(const Record& r, const Ticket& t) const;
  // The notes of earlier PATCH attempts on a link (`in_flight`) whose writes may still land.
  Json live_in_flight(const Json& synced) const;
  // Adds the values of a PATCH that may still land to a link's `in_flight` (expired ones go).
  void note_in_flight(Json& synced, const Json& values) const;
  // Notes, from a ticket event (its payload), when each synced field group got the value it
  // has here, and that the ticket's events up to `at` are handled.
  void note_changed_here(Tx& tx, const std::string& ticket, const Json& event, Instant at);
  // When the group `ours` of `ticket` got its present value here, as noted from its events;
  // none while a change of the ticket is not noted yet.
  std::optional<Instant> changed_here_at(Tx& tx, const Ticket& ticket, const char* ours);
  // Marks a ticket message as sent (no longer only being sent).
  void note_sent(Tx& tx, std::int64_t message, const std::string& ticket);
  // The comments our integration user wrote on an incident, as the instance holds them.
  std::vector<std::string> our_comments_on(const std::string& incident_sys_id);
  // Applies the journal entries that came before their incident was linked.
  void apply_waiting_journal(Tx& tx, const std::string& incident_sys_id);
  // Reads the journal entries of one incident and applies them.
  void apply_journal_of(const std::string& incident_sys_id);
  // apply_journal_of after `what` applied a new version; a failure is noted, not thrown.
  void read_journal_after(const std::string& incident_sys_id, const std::string& what);
  Applied apply_outage(Tx& tx, const Record& r);
  Applied apply_change(Tx& tx, const Record& r);
  void save_link(Tx& tx, const std::string& table, const Record& r, const std::string& local_id,
                 const Json& synced);
  void record_write(Tx& tx, const std::string& table, const Record& r);
  std::optional<std::string> service_of(const Record& r) const;
  // Applies one page of a sweep and moves the table's cursor past it; returns how many
  // records it created or changed here.
  std::int64_t apply_page(const std::string& table, const std::vector<Record>& page,
                          const Cursor& after);
  // sys_id → the sys_mod_count applied (0 for journal entries), for the records of `page`
  // that were applied before.
  std::map<std::string, std::int64_t> applied_versions(Tx& tx, const std::string& table,
                                                       const std::vector<Record>& page);
  void note_error(const std::string& what);
  // The ticket status of an incident state and back, by settings_' mappings.
  std::string status_of_state(const std::string& state) const;
  std::string state_of_status(const std::string& status) const;
  // The fields applying a record of `table` reads (sysparm_fields).
  std::vector<std::string> fields_of(const std::string& table) const;

  Host& host_;
  SyncSettings settings_;
  std::shared_ptr<Client> client_;
  Actor actor_{"system:servicenow"};
  // The webhooks this process committed lately, by table, sys_id and version: a duplicate
  // among them is answered at once. Others are stored and found applied when processed.
  RecentKeys received_{100000};
  mutable std::mutex mutex_;  // guards errors_ and in_doubt_
  std::vector<Json> errors_;  // the last few, newest last
  // Tickets whose last write may still land in the instance (a create or comment that got no
  // answer): the outbox message that made it, and since when. Until that message goes
  // through (its retry looks before it writes again), the ticket's other messages wait, or
  // each would look, find nothing yet, and write again. Kept in this process only: after a
  // restart the write has long landed, and its retry still looks first.
  struct InDoubt {
    std::int64_t message;
    Instant since;
  };
  std::map<std::string, InDoubt> in_doubt_;
};

}  // namespace slmhub::servicenow
