// The calendar, feed and status page are read by programs we do not control (calendar
// clients, feed readers, phones), so each follows its format strictly: iCalendar lines are
// folded by octets without cutting a UTF-8 character, XML never receives a character it
// cannot carry, and the HTML page fetches nothing and runs nothing.
#include "pages.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "slmhub/digest.hpp"

namespace slmhub::alerts {
namespace {

// ---- iCalendar ---------------------------------------------------------------------------

// RFC 5545 §3.3.11: backslash, semicolon and comma are escaped, a line break is "\n". Other
// control characters are not allowed in TEXT at all (§3.1), so they are dropped.
std::string ics_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case ';':
        out += "\\;";
        break;
      case ',':
        out += "\\,";
        break;
      case '\r':
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        out += "\\n";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if ((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) || c == '\t') out += c;
    }
  }
  return out;
}

// A URI value is not escaped, but a control character in it would end the line and let the
// rest pass for another property.
std::string ics_uri(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  return out;
}

// One content line, folded (§3.1): no line longer than 75 octets, continuation lines start
// with a space. A cut never lands on a UTF-8 continuation byte, so every physical line is
// valid UTF-8 on its own, which some clients require.
void content_line(std::string& out, std::string_view line) {
  std::size_t limit = 75;
  std::size_t pos = 0;
  while (line.size() - pos > limit) {
    std::size_t cut = pos + limit;
    while (cut > pos && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    if (cut == pos) cut = pos + limit;  // not UTF-8 at all: cut by octets rather than loop
    out.append(line.substr(pos, cut - pos));
    out += "\r\n ";
    pos = cut;
    limit = 74;  // the leading space counts
  }
  out.append(line.substr(pos));
  out += "\r\n";
}

std::string ics_utc(Instant t) { return date::format("%Y%m%dT%H%M%SZ", t); }

// ---- XML ---------------------------------------------------------------------------------

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 has no way to write other C0 controls, not even as references.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') {
          out += c;
        }
    }
  }
  return out;
}

void xml_element(std::string& out, std::string_view indent, std::string_view name,
                 std::string_view text) {
  out.append(indent).append("<").append(name).append(">");
  out.append(xml_escape(text)).append("</").append(name).append(">\n");
}

// ---- HTML --------------------------------------------------------------------------------

std::string esc(std::string_view text) { return escape_html(text); }

constexpr std::array<std::string_view, 4> kStatesBestFirst = {"operational", "degraded",
                                                              "maintenance", "outage"};

int severity(std::string_view state) {
  const auto it = std::find(kStatesBestFirst.begin(), kStatesBestFirst.end(), state);
  return it == kStatesBestFirst.end() ? 1 : static_cast<int>(it - kStatesBestFirst.begin());
}

std::string state_label(std::string_view state) {
  if (state == "operational") return "Operational";
  if (state == "degraded") return "Degraded";
  if (state == "maintenance") return "Maintenance";
  if (state == "outage") return "Outage";
  return std::string(state);
}

std::string overall_text(std::string_view state) {
  if (state == "operational") return "All systems operational";
  if (state == "degraded") return "Some services are degraded";
  if (state == "maintenance") return "Maintenance in progress";
  return "Service outage in progress";
}

constexpr const char* kStyle = R"(
* { box-sizing: border-box; }
body { margin: 0; color: #111827; background: #f3f4f6;
  font: 15px/1.5 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 760px; margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
a { color: #1d4ed8; }
.muted { color: #4b5563; font-size: 13px; margin: 0; }
#overall { margin: 16px 0; padding: 12px 16px; border-radius: 6px; font-weight: bold;
  font-size: 17px; color: #fff; background: #15803d; }
#overall[data-state="degraded"] { background: #b45309; }
#overall[data-state="maintenance"] { background: #1d4ed8; }
#overall[data-state="outage"] { background: #b91c1c; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d1d5db; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; }
th { font-size: 13px; color: #4b5563; }
.env { color: #6b7280; font-size: 13px; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px;
  white-space: nowrap; background: #e5e7eb; }
tr[data-state="operational"] .state { background: #dcfce7; color: #166534; }
tr[data-state="degraded"] .state { background: #fef3c7; color: #92400e; }
tr[data-state="maintenance"] .state { background: #dbeafe; color: #1e40af; }
tr[data-state="outage"] .state { background: #fee2e2; color: #991b1b; }
.detail { font-size: 13px; color: #4b5563; }
ul { list-style: none; margin: 0; padding: 0; }
li { background: #fff; border: 1px solid #d1d5db; border-radius: 6px; padding: 8px 12px;
  margin: 0 0 8px; }
li .title { font-weight: bold; }
li .meta { font-size: 13px; color: #4b5563; }
.none { color: #4b5563; }
footer { margin-top: 24px; font-size: 13px; color: #4b5563; }
@media (max-width: 480px) {
  main { padding: 10px; }
  th, td { padding: 6px; }
}
)";

// A time as the page's readers live it, with the UTC instant in the markup for programs.
class Clock {
 public:
  explicit Clock(const std::string& zone) : zone_(zone.empty() ? nullptr : find_zone(zone)) {}

  std::string time(Instant t) const {
    const std::string shown = zone_
                                  ? date::format("%a %d %b %Y %H:%M %Z", date::make_zoned(zone_, t))
                                  : date::format("%a %d %b %Y %H:%M UTC", t);
    return "<time datetime=\"" + esc(format_instant(t)) + "\">" + esc(shown) + "</time>";
  }
  std::string zone_name() const { return zone_ ? std::string(zone_->name()) : "UTC"; }

 private:
  const date::time_zone* zone_;
};

// "45 min", "2 h 5 min", "3 d 4 h": two units are enough to judge an outage at a glance.
std::string duration_text(std::int64_t seconds) {
  const std::int64_t minutes = std::max<std::int64_t>(seconds, 0) / 60;
  const std::int64_t days = minutes / 1440;
  const std::int64_t hours = minutes % 1440 / 60;
  const std::int64_t rest = minutes % 60;
  if (days > 0) return std::to_string(days) + " d " + std::to_string(hours) + " h";
  if (hours > 0) {
    return std::to_string(hours) + " h" + (rest > 0 ? " " + std::to_string(rest) + " min" : "");
  }
  return std::to_string(rest) + " min";
}

std::string service_name(const StatusPage& page, const std::string& id) {
  for (const auto& service : page.services) {
    if (service.id == id) return service.name.empty() ? id : service.name;
  }
  return id;
}

enum class Section { open, upcoming, restored };

std::string item_html(const StatusPage& page, const Clock& clock, const StatusItem& item,
                      Section section) {
  std::string html = "<li data-id=\"" + esc(item.id) + "\" data-service=\"" + esc(item.service) +
                     "\"><div class=\"title\">";
  html += item.link.empty() ? esc(item.title)
                            : "<a href=\"" + esc(item.link) + "\">" + esc(item.title) + "</a>";
  html += "</div><div class=\"meta\">" + esc(service_name(page, item.service));
  if (!item.kind.empty()) {
    std::string kind = item.kind;
    std::replace(kind.begin(), kind.end(), '_', ' ');
    html += " &middot; " + esc(kind);
  }
  html += "</div><div class=\"meta\">";
  switch (section) {
    case Section::open:
      html += "Since " + clock.time(item.start) + " (" +
              duration_text((page.generated - item.start).count()) + " so far)";
      break;
    case Section::upcoming:
      html += item.end ? clock.time(item.start) + " to " + clock.time(*item.end) + " (" +
                             duration_text((*item.end - item.start).count()) + ")"
                       : "From " + clock.time(item.start);
      break;
    case Section::restored:
      html += item.end ? clock.time(item.start) + " to " + clock.time(*item.end) + " (" +
                             duration_text((*item.end - item.start).count()) + ")"
                       : "Since " + clock.time(item.start);
      break;
  }
  return html + "</div></li>\n";
}

std::string section_html(const StatusPage& page, const Clock& clock, const char* id,
                         const char* heading, const char* none,
                         const std::vector<StatusItem>& items, Section section) {
  std::string html = std::string("<section id=\"") + id + "\">\n<h2>" + heading + "</h2>\n";
  if (items.empty()) return html + "<p class=\"none\">" + none + "</p>\n</section>\n";
  html += "<ul>\n";
  for (const auto& item : items) html += item_html(page, clock, item, section);
  return html + "</ul>\n</section>\n";
}

Json items_json(const std::vector<StatusItem>& items) {
  Json list = Json::array();
  for (const auto& item : items) {
    list.push_back({{"id", item.id},
                    {"service", item.service},
                    {"title", item.title},
                    {"kind", item.kind},
                    {"start", format_instant(item.start)},
                    {"end", item.end ? Json(format_instant(*item.end)) : Json(nullptr)},
                    {"link", item.link}});
  }
  return list;
}

}  // namespace

std::string render_ics(const std::string& calendar_name, const std::vector<CalendarEvent>& events) {
  std::string out;
  content_line(out, "BEGIN:VCALENDAR");
  content_line(out, "VERSION:2.0");
  content_line(out, "PRODID:-//slmhub//Tech Alerts//EN");
  content_line(out, "CALSCALE:GREGORIAN");
  content_line(out, "METHOD:PUBLISH");
  content_line(out, "X-WR-CALNAME:" + ics_text(calendar_name));
  for (const auto& event : events) {
    content_line(out, "BEGIN:VEVENT");
    content_line(out, "UID:" + ics_text(event.uid));
    content_line(out, "SEQUENCE:" + std::to_string(event.sequence));
    content_line(out, "DTSTAMP:" + ics_utc(event.stamp));
    content_line(out, "DTSTART:" + ics_utc(event.start));
    content_line(out, "DTEND:" + ics_utc(event.end));
    content_line(out, "SUMMARY:" + ics_text(event.summary));
    if (!event.description.empty()) content_line(out, "DESCRIPTION:" + ics_text(event.description));
    if (!event.location.empty()) content_line(out, "LOCATION:" + ics_text(event.location));
    if (!event.categories.empty()) {
      std::string categories;
      for (const auto& category : event.categories) {
        categories += (categories.empty() ? "" : ",") + ics_text(category);
      }
      content_line(out, "CATEGORIES:" + categories);
    }
    if (!event.url.empty()) content_line(out, "URL:" + ics_uri(event.url));
    content_line(out, event.cancelled ? "STATUS:CANCELLED" : "STATUS:CONFIRMED");
    content_line(out, "TRANSP:OPAQUE");
    content_line(out, "END:VEVENT");
  }
  if (events.empty()) {
    // RFC 5545 §3.4 wants one component at least, and strict readers (Outlook's subscription)
    // refuse a calendar without: a UTC time zone, which every time here is already in, is one
    // that shows nothing.
    content_line(out, "BEGIN:VTIMEZONE");
    content_line(out, "TZID:UTC");
    content_line(out, "BEGIN:STANDARD");
    content_line(out, "DTSTART:19700101T000000");
    content_line(out, "TZOFFSETFROM:+0000");
    content_line(out, "TZOFFSETTO:+0000");
    content_line(out, "TZNAME:UTC");
    content_line(out, "END:STANDARD");
    content_line(out, "END:VTIMEZONE");
  }
  content_line(out, "END:VCALENDAR");
  return out;
}

std::string render_atom(const std::string& feed_id, const std::string& title,
                        const std::string& self_url, const std::string& alternate_url,
                        const std::string& author, Instant now,
                        const std::vector<FeedEntry>& entries) {
  Instant updated = now;
  if (!entries.empty()) {
    updated = std::max_element(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
                return a.updated < b.updated;
              })->updated;
  }
  std::string out =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
      "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n";
  xml_element(out, "  ", "id", feed_id);
  xml_element(out, "  ", "title", title);
  xml_element(out, "  ", "updated", format_instant(updated));
  out += "  <link rel=\"self\" type=\"application/atom+xml\" href=\"" + xml_escape(self_url) +
         "\"/>\n";
  out +=
      "  <link rel=\"alternate\" type=\"text/html\" href=\"" + xml_escape(alternate_url) + "\"/>\n";
  out += "  <author><name>" + xml_escape(author) + "</name></author>\n";
  for (const auto& entry : entries) {
    out += "  <entry>\n";
    xml_element(out, "    ", "id", entry.id);
    xml_element(out, "    ", "title", entry.title);
    xml_element(out, "    ", "updated", format_instant(entry.updated));
    if (!entry.summary.empty()) {
      out += "    <summary type=\"text\">" + xml_escape(entry.summary) + "</summary>\n";
    }
    if (!entry.link.empty()) {
      out += "    <link rel=\"alternate\" href=\"" + xml_escape(entry.link) + "\"/>\n";
    }
    if (!entry.kind.empty()) out += "    <category term=\"" + xml_escape(entry.kind) + "\"/>\n";
    out += "  </entry>\n";
  }
  return out + "</feed>\n";
}

std::string overall_state(const std::vector<StatusService>& services) {
  int worst = 0;
  for (const auto& service : services) worst = std::max(worst, severity(service.state));
  return std::string(kStatesBestFirst[static_cast<std::size_t>(worst)]);
}

std::string render_status_html(const StatusPage& page) {
  const Clock clock(page.zone);
  const std::string overall = overall_state(page.services);
  const std::string provider = esc(page.provider_name);
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>" +
      provider + " service status</title>\n";
  if (!page.feed_url.empty()) {
    html += "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"Tech Alerts\" href=\"" +
            esc(page.feed_url) + "\">\n";
  }
  html += std::string("<style>") + kStyle + "</style>\n</head>\n<body>\n<main id=\"status\">\n";
  html += "<header>\n<h1>" + provider + " service status</h1>\n<p class=\"muted\">Updated " +
          clock.time(page.generated) + "</p>\n</header>\n";
  html +=
      "<p id=\"overall\" data-state=\"" + esc(overall) + "\">" + overall_text(overall) + "</p>\n";

  html += "<section id=\"services\">\n<h2>Services</h2>\n";
  if (page.services.empty()) {
    html += "<p class=\"none\">No services are listed.</p>\n";
  } else {
    html += "<table>\n<thead><tr><th>Service</th><th>Status</th></tr></thead>\n<tbody>\n";
    for (const auto& service : page.services) {
      html += "<tr class=\"service\" data-service=\"" + esc(service.id) + "\" data-state=\"" +
              esc(service.state) + "\"><td>" +
              esc(service.name.empty() ? service.id : service.name);
      if (!service.environment.empty()) {
        html += " <span class=\"env\">" + esc(service.environment) + "</span>";
      }
      html += "</td><td><span class=\"state\">" + esc(state_label(service.state)) + "</span>";
      if (!service.detail.empty())
        html += "<div class=\"detail\">" + esc(service.detail) + "</div>";
      html += "</td></tr>\n";
    }
    html += "</tbody>\n</table>\n";
  }
  html += "</section>\n";

  html += section_html(page, clock, "open-interruptions", "Open interruptions",
                       "No open interruptions.", page.open_interruptions, Section::open);
  html +=
      section_html(page, clock, "upcoming-maintenance", "Upcoming maintenance",
                   "No maintenance is scheduled.", page.upcoming_maintenance, Section::upcoming);
  html +=
      section_html(page, clock, "recent-restorations", "Recently restored",
                   "Nothing was restored recently.", page.recent_restorations, Section::restored);

  html += "<footer>\n<p>";
  std::string links;
  const auto link = [&links](const std::string& url, const char* text) {
    if (url.empty()) return;
    links +=
        (links.empty() ? "" : " &middot; ") + ("<a href=\"" + esc(url) + "\">") + text + "</a>";
  };
  link(page.calendar_url, "Maintenance calendar (iCalendar)");
  link(page.feed_url, "Tech Alerts feed (Atom)");
  link(page.json_url, "This page as JSON");
  html += links + "</p>\n<p>Times are shown in " + esc(clock.zone_name()) +
          ".</p>\n</footer>\n</main>\n</body>\n</html>\n";
  return html;
}

Json status_json(const StatusPage& page) {
  Json services = Json::array();
  for (const auto& service : page.services) {
    services.push_back({{"id", service.id},
                        {"name", service.name},
                        {"environment", service.environment},
                        {"state", service.state},
                        {"detail", service.detail}});
  }
  return {{"generated_at", format_instant(page.generated)},
          {"overall", overall_state(page.services)},
          {"services", std::move(services)},
          {"open_interruptions", items_json(page.open_interruptions)},
          {"upcoming_maintenance", items_json(page.upcoming_maintenance)},
          {"recent_restorations", items_json(page.recent_restorations)}};
}

}  // namespace slmhub::alerts
