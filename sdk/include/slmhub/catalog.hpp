// The host-owned core entities (DESIGN.md §3) as plugins read and record them: services,
// customers, calendars, interruptions, maintenance windows and tickets. Writes go through
// the caller's transaction so a plugin's own rows, the core rows, the audit rows and the
// events they cause commit together.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "slmhub/domain.hpp"
#include "slmhub/store.hpp"

namespace slmhub {

// Who made a change, for the audit log: a token id or "system:<plugin>".
struct Actor {
  std::string id;
};

// What the core knows about a maintenance window's service when it is written, read in the
// writing transaction (an import may create the service, its calendar and the window together).
struct MaintenanceContext {
  Service service;
  const date::time_zone* zone = nullptr;  // the service's zone (or the dataset's)
  // The service's business-hours calendar; nullopt for a 24x7 service.
  std::optional<BusinessCalendar> service_hours;
  BusinessCalendar provider_calendar;  // DOMAIN.md §2: rules every lead time
  int fiscal_year_start_month = 9;
  std::vector<MaintenanceWindow> other_windows;  // the service's other stored windows
  Instant now{};
};

// Checks, and may adjust, a maintenance window inside the transaction that stores it, whatever
// the way in (API, dataset import, a connector's record_maintenance): `window` is what will
// be stored (the policy may change it, e.g. its category or announced_at), `before` the
// stored version or null for a new window. Throwing ValidationError refuses the write; its
// paths are relative to the window ("$.category") and the host prefixes them with the
// window's place in the input. `tx` is for the policy's own rows.
using MaintenancePolicy =
    std::function<void(Tx& tx, const MaintenanceContext& context, MaintenanceWindow& window,
                       const MaintenanceWindow* before)>;

class Catalog {
 public:
  virtual ~Catalog() = default;
  // Everything in the store, in the dataset shape the offline tools read.
  virtual Dataset snapshot() const = 0;
  virtual std::optional<Service> service(const std::string& id) const = 0;
  virtual std::optional<Customer> customer(const std::string& id) const = 0;
  // One interruption by its incident number, without reading the whole store (event
  // handlers are told an id and read the current record).
  virtual std::optional<Interruption> interruption(const std::string& id) const = 0;
  // One maintenance window by its change number.
  virtual std::optional<MaintenanceWindow> maintenance(const std::string& id) const = 0;
  // The calendar that rules business-day deadlines (DOMAIN.md §2), without reading the
  // whole store: the dataset's provider_calendar, else Monday to Friday in its zone.
  virtual BusinessCalendar provider_calendar() const = 0;
  // Upserts by id; validates references; writes audit rows and an event
  // (`interruption.recorded` / `maintenance.scheduled` ...).
  virtual void record_interruption(Tx& tx, const Actor& actor, const Interruption& item) = 0;
  // Deletes an interruption its source withdrew (an outage re-classified as planned there),
  // with its audit row and `interruption.deleted`; false when there is none. Published reports
  // keep it: they are frozen.
  virtual bool remove_interruption(Tx& tx, const Actor& actor, const std::string& id) = 0;
  virtual void record_maintenance(Tx& tx, const Actor& actor, const MaintenanceWindow& item) = 0;
  // The one policy every maintenance write goes through (the Tech Alerts notice rules).
  // Registered in start() like a route; a second policy is refused (std::logic_error).
  virtual void set_maintenance_policy(MaintenancePolicy policy) = 0;
  // One row of the audit log for a plugin's own state change (a report approved, a credit
  // request denied), in the caller's transaction. `before` / `after` may be null.
  virtual void audit(Tx& tx, const Actor& actor, const std::string& action,
                     const std::string& entity, const std::string& id, const Json& before,
                     const Json& after) = 0;
};

struct TicketMessage {
  std::int64_t id = 0;
  // "in", "out", or "note": for staff only (a ServiceNow work note), never shown to a
  // customer token.
  std::string direction;
  std::string author;
  std::string body;
  std::string message_id;  // RFC 5322 Message-ID, when it came by mail
  Instant at{};
};

struct Ticket {
  std::string id;                        // case number, e.g. "DBR0000042"
  std::string queue;                     // "default", "db-requests"
  std::string kind = "service_request";  // or "incident"
  std::string subject;
  std::string status = "new";  // new, open, pending, resolved, closed
  int priority = 3;            // 1 (highest) .. 5
  std::string customer;        // customer id or ""
  std::string requester;       // e-mail address or principal
  std::string external_ref;    // e.g. a ServiceNow sys_id
  Instant created_at{};
  Instant updated_at{};
  // The first-response target (DOMAIN.md §7, business time of the provider calendar) and
  // when a person first answered (an outgoing message not written by the system).
  std::optional<Instant> first_response_due{};
  std::optional<Instant> first_responded_at{};
  std::vector<TicketMessage> messages;
};

class Tickets {
 public:
  virtual ~Tickets() = default;
  // Assigns the case number from the queue's prefix and sequence; writes `ticket.created`.
  // `created_at` is when the request arrived if the caller knows (not later than now), else
  // now; the first-response target runs from it.
  virtual Ticket create(Tx& tx, const Actor& actor, Ticket ticket) = 0;
  virtual TicketMessage add_message(Tx& tx, const Actor& actor, const std::string& ticket_id,
                                    TicketMessage message) = 0;
  virtual std::optional<Ticket> find(const std::string& id) const = 0;
  // The ticket whose external_ref (e.g. the ServiceNow INC number) is `ref`, the oldest when
  // several are; nullopt for "" or none.
  virtual std::optional<Ticket> find_by_external_ref(const std::string& ref) const = 0;
  // Writes `ticket`'s kind, subject, status, priority, customer and external_ref (its
  // messages are not touched: add_message adds them); audits and writes `ticket.updated`.
  // A new kind brings its first-response target, timed from the ticket's arrival. NotFound
  // when there is no such ticket.
  virtual void update(Tx& tx, const Actor& actor, const Ticket& ticket) = 0;
  // Declares a queue and the prefix of its case numbers ("db-requests" → "DBR0000042"). A
  // queue first used without a declaration gets "SLM". The prefix of a queue that already
  // has tickets does not change (its case numbers are in people's mailboxes): a different
  // prefix is a Conflict naming both.
  virtual void define_queue(Tx& tx, const std::string& name, const std::string& prefix) = 0;
  // The ticket without its messages (`messages` empty): for deciding about a ticket, at a
  // fraction of find()'s cost once it has a conversation. Last, so that plugins built
  // before it keep calling the functions they know (kPluginApi stays).
  virtual std::optional<Ticket> find_fields(const std::string& id) const = 0;
};

}  // namespace slmhub
