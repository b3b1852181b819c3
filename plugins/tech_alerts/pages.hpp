// The public faces of Tech Alerts (DOMAIN.md §8, DESIGN.md §5 `/maintenance.ics`,
// `/status.json`): the maintenance calendar as iCalendar, the alerts as an Atom feed, and the
// status page as HTML and JSON. Pure functions of plain structs, so the plugin decides what is
// shown and these only decide how; the same input always gives the same bytes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "slmhub/json.hpp"
#include "slmhub/time.hpp"

namespace slmhub::alerts {

// One VEVENT. `uid` stays the same for every revision of a window and `sequence` grows with
// each one, so calendar clients replace the event instead of adding another.
struct CalendarEvent {
  std::string uid;
  int sequence = 0;
  std::string summary, description, location, url;
  Instant start{}, end{}, stamp{};
  bool cancelled = false;
  std::vector<std::string> categories;
};

// An RFC 5545 VCALENDAR (VERSION:2.0, PRODID:-//slmhub//Tech Alerts//EN, CALSCALE:GREGORIAN,
// METHOD:PUBLISH, X-WR-CALNAME) with one VEVENT per event, in the given order: UID, SEQUENCE,
// DTSTAMP, DTSTART and DTEND in UTC (YYYYMMDDTHHMMSSZ), SUMMARY, then DESCRIPTION, LOCATION,
// CATEGORIES and URL when not empty, STATUS:CONFIRMED or CANCELLED, TRANSP:OPAQUE. TEXT values
// are escaped (\ ; , and line breaks as \n; other control characters dropped); lines end in
// CRLF and are folded at 75 octets without splitting a UTF-8 sequence.
std::string render_ics(const std::string& calendar_name, const std::vector<CalendarEvent>& events);

struct FeedEntry {
  std::string id;  // an IRI that never changes, e.g. "tag:example.org,2026:TA-000001"
  std::string title, summary, link, kind;
  Instant updated{};
};

// An Atom 1.0 (RFC 4287) feed: id, title, updated (the newest entry's, or `now` without
// entries), link rel=self and rel=alternate, author name, then the entries in the given order,
// each with id, title, updated, summary (type text), a rel=alternate link and a category
// term=kind when those are not empty. Every text is XML-escaped; characters XML 1.0 cannot
// carry (control characters other than tab and line breaks) are dropped.
std::string render_atom(const std::string& feed_id, const std::string& title,
                        const std::string& self_url, const std::string& alternate_url,
                        const std::string& author, Instant now,
                        const std::vector<FeedEntry>& entries);

struct StatusService {
  std::string id, name, environment;
  std::string state;  // operational | degraded | outage | maintenance
  std::string detail;
};

struct StatusItem {
  std::string id, service, title, kind;  // `service` is a StatusService id
  Instant start{};
  std::optional<Instant> end;  // none while still open
  std::string link;
};

struct StatusPage {
  std::string provider_name;
  Instant generated{};
  std::string zone;  // IANA, for the local times shown; "" shows UTC
  std::vector<StatusService> services;
  std::vector<StatusItem> open_interruptions, upcoming_maintenance, recent_restorations;
  std::string calendar_url, feed_url, json_url;
};

// The worst state of the services: outage > maintenance > degraded > operational, and
// "operational" when there are none. A state outside these four counts as degraded: the page
// must not call a service it does not understand operational.
std::string overall_state(const std::vector<StatusService>& services);

// A complete HTML5 document: viewport meta, inline CSS only, a Content-Security-Policy that
// forbids scripts and every fetch, every text HTML-escaped, times in the page's zone (with the
// UTC instant in <time datetime>). Stable hooks for tests and scrapers: <main id="status">,
// <p id="overall" data-state="...">, one <tr class="service" data-service="ID"
// data-state="STATE"> per service, and <section id="open-interruptions">,
// <section id="upcoming-maintenance">, <section id="recent-restorations"> with one
// <li data-id="ID"> per item. Throws TimeError when `zone` is not an IANA zone.
std::string render_status_html(const StatusPage& page);

// {"generated_at", "overall", "services": [{id, name, environment, state, detail}],
//  "open_interruptions" / "upcoming_maintenance" / "recent_restorations":
//  [{id, service, title, kind, start, end, link}]}: instants as ISO 8601 UTC text
// ("2026-12-12T08:00:00Z"), end null while open.
Json status_json(const StatusPage& page);

}  // namespace slmhub::alerts
