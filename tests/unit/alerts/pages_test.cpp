// The maintenance calendar, the Atom feed and the status page as bytes: exact iCalendar
// (escaping, folding by octets, cancellation), a calendar a real parser reads back, XML and
// HTML escaping, and the status page's stable hooks (data-state, overall banner).
#include "pages.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace slmhub::alerts {
namespace {

namespace fs = std::filesystem;

Instant at(const char* iso) { return parse_instant(iso); }

CalendarEvent patching() {
  CalendarEvent event;
  event.uid = "CHG0001234@example.org";
  event.sequence = 2;
  event.summary = "Oracle patching";
  event.description = "Line one\nLine two, with; specials\\";
  event.url = "http://127.0.0.1:8080/alerts/TA-000001";
  event.start = at("2026-12-12T08:00:00Z");
  event.end = at("2026-12-12T12:00:00Z");
  event.stamp = at("2026-11-20T15:00:00Z");
  event.categories = {"planned_outage", "oracle-prod"};
  return event;
}

std::vector<std::string> physical_lines(const std::string& ics) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < ics.size()) {
    const std::size_t end = ics.find("\r\n", begin);
    if (end == std::string::npos) {
      lines.push_back(ics.substr(begin));
      break;
    }
    lines.push_back(ics.substr(begin, end - begin));
    begin = end + 2;
  }
  return lines;
}

std::string unfold(std::string ics) {
  for (std::size_t at = ics.find("\r\n "); at != std::string::npos; at = ics.find("\r\n ", at)) {
    ics.erase(at, 3);
  }
  return ics;
}

bool valid_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t length = c < 0x80         ? 1
                               : (c >> 5) == 6  ? 2
                               : (c >> 4) == 14 ? 3
                               : (c >> 3) == 30 ? 4
                                                : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// ---- iCalendar ---------------------------------------------------------------------------

TEST(Ics, OneEventExactly) {
  EXPECT_EQ(render_ics("Example maintenance", {patching()}),
            "BEGIN:VCALENDAR\r\n"
            "VERSION:2.0\r\n"
            "PRODID:-//slmhub//Tech Alerts//EN\r\n"
            "CALSCALE:GREGORIAN\r\n"
            "METHOD:PUBLISH\r\n"
            "X-WR-CALNAME:Example maintenance\r\n"
            "BEGIN:VEVENT\r\n"
            "UID:CHG0001234@example.org\r\n"
            "SEQUENCE:2\r\n"
            "DTSTAMP:20261120T150000Z\r\n"
            "DTSTART:20261212T080000Z\r\n"
            "DTEND:20261212T120000Z\r\n"
            "SUMMARY:Oracle patching\r\n"
            "DESCRIPTION:Line one\\nLine two\\, with\\; specials\\\\\r\n"
            "CATEGORIES:planned_outage,oracle-prod\r\n"
            "URL:http://127.0.0.1:8080/alerts/TA-000001\r\n"
            "STATUS:CONFIRMED\r\n"
            "TRANSP:OPAQUE\r\n"
            "END:VEVENT\r\n"
            "END:VCALENDAR\r\n");
}

// RFC 5545 §3.4: a calendar holds one component at least; with no window, a UTC time zone.
TEST(Ics, AnEmptyCalendarStillHoldsOneComponent) {
  EXPECT_EQ(render_ics("Empty", {}),
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//slmhub//Tech Alerts//EN\r\n"
            "CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:Empty\r\n"
            "BEGIN:VTIMEZONE\r\nTZID:UTC\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
            "TZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\nTZNAME:UTC\r\nEND:STANDARD\r\n"
            "END:VTIMEZONE\r\nEND:VCALENDAR\r\n");
}

TEST(Ics, TextEscapingAndOptionalProperties) {
  CalendarEvent event = patching();
  event.summary = "a,b;c\\d\r\ne\rf\x01g\th";
  event.description.clear();
  event.location = "DC 1, room; 2";
  event.url.clear();
  event.categories = {"a,b", "c;d"};
  event.cancelled = true;
  const std::string ics = render_ics("Cal, with; escapes", {event});
  EXPECT_NE(ics.find("\r\nX-WR-CALNAME:Cal\\, with\\; escapes\r\n"), std::string::npos);
  // Line breaks of every convention become \n; a control character other than tab is dropped.
  EXPECT_NE(ics.find("\r\nSUMMARY:a\\,b\\;c\\\\d\\ne\\nfg\th\r\n"), std::string::npos) << ics;
  EXPECT_NE(ics.find("\r\nLOCATION:DC 1\\, room\\; 2\r\n"), std::string::npos);
  EXPECT_NE(ics.find("\r\nCATEGORIES:a\\,b,c\\;d\r\n"), std::string::npos);
  EXPECT_EQ(ics.find("DESCRIPTION"), std::string::npos);
  EXPECT_EQ(ics.find("URL:"), std::string::npos);
  EXPECT_NE(ics.find("\r\nSTATUS:CANCELLED\r\nTRANSP:OPAQUE\r\n"), std::string::npos);
  EXPECT_EQ(ics.find("CONFIRMED"), std::string::npos);
}

TEST(Ics, UrlCannotInjectAProperty) {
  CalendarEvent event = patching();
  event.url = "http://x/\r\nSTATUS:CANCELLED";
  const std::string ics = render_ics("c", {event});
  EXPECT_NE(ics.find("\r\nURL:http://x/STATUS:CANCELLED\r\n"), std::string::npos);
  EXPECT_NE(ics.find("\r\nSTATUS:CONFIRMED\r\n"), std::string::npos);
}

TEST(Ics, FoldsAt75OctetsWithoutSplittingAUtf8Sequence) {
  CalendarEvent event = patching();
  // "SUMMARY:" and 66 letters are 74 octets; "é" (C3 A9) would take octets 75 and 76, so the
  // line breaks before it.
  event.summary = std::string(66, 'a') + "\u00e9" + std::string(10, 'b');
  // "DESCRIPTION:" and 61 letters are 73 octets; a three-octet "€" (E2 82 AC) would end at 76.
  event.description = std::string(61, 'c') + "\u20ac" + "d";
  event.location = std::string(300, 'x');
  const std::string ics = render_ics("c", {event});
  EXPECT_NE(ics.find("\r\nSUMMARY:" + std::string(66, 'a') + "\r\n \u00e9" + std::string(10, 'b') +
                     "\r\n"),
            std::string::npos)
      << ics;
  EXPECT_NE(ics.find("\r\nDESCRIPTION:" + std::string(61, 'c') + "\r\n \u20acd\r\n"),
            std::string::npos)
      << ics;
  // "LOCATION:" and 66 letters fill 75 octets, then 74 per continuation line after its space.
  EXPECT_NE(ics.find("\r\nLOCATION:" + std::string(66, 'x') + "\r\n " + std::string(74, 'x') +
                     "\r\n " + std::string(74, 'x') + "\r\n " + std::string(74, 'x') + "\r\n " +
                     std::string(12, 'x') + "\r\n"),
            std::string::npos)
      << ics;
  for (const auto& line : physical_lines(ics)) {
    EXPECT_LE(line.size(), 75u) << line;
    EXPECT_TRUE(valid_utf8(line)) << line;
  }
  EXPECT_NE(unfold(ics).find("\r\nSUMMARY:" + event.summary + "\r\n"), std::string::npos);
  EXPECT_NE(unfold(ics).find("\r\nLOCATION:" + event.location + "\r\n"), std::string::npos);
}

// A real iCalendar parser (Debian's python3-icalendar) reads the calendar back.
TEST(Ics, PythonIcalendarReadsItBack) {
  CalendarEvent second = patching();
  second.uid = "TA-000007@example.org";
  second.sequence = 0;
  second.summary = "Emergency: r\u00e9seau, core; switch \\ " + std::string(80, 'z');
  second.start = at("2027-01-05T23:30:00Z");
  second.end = at("2027-01-06T01:00:00Z");
  second.cancelled = true;
  const std::string ics = render_ics("Example, Data; Centre", {patching(), second});

  const fs::path file =
      fs::temp_directory_path() / ("slmhub-alerts-" + std::to_string(::getpid()) + ".ics");
  std::ofstream(file, std::ios::binary) << ics;
  const std::string script =
      "import sys, icalendar\n"
      "cal = icalendar.Calendar.from_ical(open(sys.argv[1], \"rb\").read())\n"
      "print(cal[\"X-WR-CALNAME\"])\n"
      "for ev in cal.walk(\"VEVENT\"):\n"
      "    print(\"|\".join([str(ev[\"UID\"]), str(int(ev[\"SEQUENCE\"])),\n"
      "        ev.decoded(\"DTSTART\").isoformat(), ev.decoded(\"DTEND\").isoformat(),\n"
      "        str(ev[\"STATUS\"]), str(ev[\"SUMMARY\"])]))\n";
  const std::string command = test::python() + " -c '" + script + "' " + file.string() + " 2>&1";
  std::string output;
  {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    ASSERT_TRUE(pipe);
    char buffer[4096];
    while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) {
      output.append(buffer, n);
    }
  }
  fs::remove(file);
  EXPECT_EQ(output,
            "Example, Data; Centre\n"
            "CHG0001234@example.org|2|2026-12-12T08:00:00+00:00|2026-12-12T12:00:00+00:00|"
            "CONFIRMED|Oracle patching\n"
            "TA-000007@example.org|0|2027-01-05T23:30:00+00:00|2027-01-06T01:00:00+00:00|"
            "CANCELLED|" +
                second.summary + "\n");
}

// ---- Atom --------------------------------------------------------------------------------

TEST(Atom, FeedExactly) {
  const std::vector<FeedEntry> entries = {
      {"tag:example.org,2026:TA-000001", "Oracle <patching> & \"reboot\"", "Line 1\nit's 'quoted'",
       "http://127.0.0.1:8080/alerts/TA-000001?a=1&b=2", "planned_outage",
       at("2026-11-20T15:00:00Z")},
      {"tag:example.org,2026:TA-000002", "Restored", "", "", "", at("2026-11-21T09:30:00Z")}};
  EXPECT_EQ(
      render_atom("tag:example.org,2026:alerts", "Example \x01Tech Alerts",
                  "http://127.0.0.1:8080/alerts.atom", "http://127.0.0.1:8080/status?x=1&y=2",
                  "Example Data Centre", at("2026-12-01T00:00:00Z"), entries),
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
      "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n"
      "  <id>tag:example.org,2026:alerts</id>\n"
      "  <title>Example Tech Alerts</title>\n"
      "  <updated>2026-11-21T09:30:00Z</updated>\n"
      "  <link rel=\"self\" type=\"application/atom+xml\" "
      "href=\"http://127.0.0.1:8080/alerts.atom\"/>\n"
      "  <link rel=\"alternate\" type=\"text/html\" "
      "href=\"http://127.0.0.1:8080/status?x=1&amp;y=2\"/>\n"
      "  <author><name>Example Data Centre</name></author>\n"
      "  <entry>\n"
      "    <id>tag:example.org,2026:TA-000001</id>\n"
      "    <title>Oracle &lt;patching&gt; &amp; &quot;reboot&quot;</title>\n"
      "    <updated>2026-11-20T15:00:00Z</updated>\n"
      "    <summary type=\"text\">Line 1\nit&apos;s &apos;quoted&apos;</summary>\n"
      "    <link rel=\"alternate\" href=\"http://127.0.0.1:8080/alerts/TA-000001?a=1&amp;b=2\"/>\n"
      "    <category term=\"planned_outage\"/>\n"
      "  </entry>\n"
      "  <entry>\n"
      "    <id>tag:example.org,2026:TA-000002</id>\n"
      "    <title>Restored</title>\n"
      "    <updated>2026-11-21T09:30:00Z</updated>\n"
      "  </entry>\n"
      "</feed>\n");
}

TEST(Atom, EmptyFeedIsUpdatedNow) {
  const std::string feed =
      render_atom("urn:x", "T", "http://s", "http://a", "A", at("2026-12-01T00:00:00Z"), {});
  EXPECT_NE(feed.find("  <updated>2026-12-01T00:00:00Z</updated>\n"), std::string::npos);
  EXPECT_EQ(feed.find("<entry>"), std::string::npos);
}

// ---- status page -------------------------------------------------------------------------

StatusPage page() {
  StatusPage p;
  p.provider_name = "Example <Data> Centre";
  p.generated = at("2026-12-12T08:00:00Z");
  p.zone = "America/Chicago";
  p.services = {
      {"oracle-prod", "Oracle Database (Production)", "production", "outage", "Listener down"},
      {"mysql-qa", "MySQL (QA)", "qa", "operational", ""},
      {"web", "<Web> & 'Portal'", "production", "degraded", "Slow \"search\""}};
  p.open_interruptions = {{"INC0001234", "oracle-prod", "Listener <down>", "interruption",
                           at("2026-12-12T06:45:00Z"), std::nullopt,
                           "http://127.0.0.1:8080/alerts/TA-000003?a=1&b=2"}};
  p.upcoming_maintenance = {{"CHG0001234", "oracle-prod", "Quarterly patching", "planned_outage",
                             at("2026-12-19T08:00:00Z"), at("2026-12-19T12:00:00Z"), ""},
                            {"CHG0001235", "mysql-qa", "Upgrade", "planned_non_disruptive",
                             at("2026-12-20T15:00:00Z"), at("2026-12-20T15:30:00Z"), ""}};
  p.calendar_url = "http://127.0.0.1:8080/maintenance.ics";
  p.feed_url = "http://127.0.0.1:8080/alerts.atom";
  p.json_url = "http://127.0.0.1:8080/status.json";
  return p;
}

// The markup of <section id="ID"> up to its end.
std::string section(const std::string& html, const std::string& id) {
  const std::size_t begin = html.find("<section id=\"" + id + "\">");
  if (begin == std::string::npos) return "";
  return html.substr(begin, html.find("</section>", begin) - begin);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(StatusPage, OverallIsTheWorstState) {
  EXPECT_EQ(overall_state({}), "operational");
  EXPECT_EQ(overall_state({{"a", "", "", "operational", ""}}), "operational");
  EXPECT_EQ(overall_state({{"a", "", "", "operational", ""}, {"b", "", "", "degraded", ""}}),
            "degraded");
  EXPECT_EQ(overall_state({{"a", "", "", "maintenance", ""}, {"b", "", "", "degraded", ""}}),
            "maintenance");
  EXPECT_EQ(overall_state({{"a", "", "", "maintenance", ""},
                           {"b", "", "", "outage", ""},
                           {"c", "", "", "degraded", ""}}),
            "outage");
  EXPECT_EQ(overall_state({{"a", "", "", "on fire?", ""}}), "degraded");
}

TEST(StatusPage, HooksStatesAndEscaping) {
  const std::string html = render_status_html(page());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
  EXPECT_NE(html.find("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"),
            std::string::npos);
  EXPECT_NE(html.find("<main id=\"status\">"), std::string::npos);
  EXPECT_NE(html.find("<p id=\"overall\" data-state=\"outage\">Service outage in progress</p>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr class=\"service\" data-service=\"oracle-prod\" data-state=\"outage\">"
                      "<td>Oracle Database (Production) <span class=\"env\">production</span></td>"
                      "<td><span class=\"state\">Outage</span><div class=\"detail\">Listener down"
                      "</div></td></tr>"),
            std::string::npos)
      << html;
  EXPECT_NE(
      html.find("<tr class=\"service\" data-service=\"mysql-qa\" data-state=\"operational\">"),
      std::string::npos);
  EXPECT_NE(html.find("data-service=\"web\" data-state=\"degraded\"><td>&lt;Web&gt; &amp; "
                      "&#39;Portal&#39; "),
            std::string::npos);
  EXPECT_NE(html.find("Slow &quot;search&quot;"), std::string::npos);
  EXPECT_NE(html.find("<title>Example &lt;Data&gt; Centre service status</title>"),
            std::string::npos);
  EXPECT_EQ(html.find("<Data>"), std::string::npos);
  EXPECT_EQ(html.find("<Web>"), std::string::npos);
  EXPECT_EQ(count(html, "<tr class=\"service\""), 3u);

  const std::string open = section(html, "open-interruptions");
  EXPECT_EQ(count(open, "<li data-id="), 1u);
  EXPECT_NE(
      open.find("<li data-id=\"INC0001234\" data-service=\"oracle-prod\"><div class=\"title\">"
                "<a href=\"http://127.0.0.1:8080/alerts/TA-000003?a=1&amp;b=2\">Listener "
                "&lt;down&gt;</a></div>"),
      std::string::npos)
      << open;
  // Local time in the page's zone; the UTC instant for programs.
  EXPECT_NE(open.find("Since <time datetime=\"2026-12-12T06:45:00Z\">Sat 12 Dec 2026 00:45 CST"
                      "</time> (1 h 15 min so far)"),
            std::string::npos)
      << open;
  const std::string upcoming = section(html, "upcoming-maintenance");
  EXPECT_EQ(count(upcoming, "<li data-id="), 2u);
  EXPECT_NE(upcoming.find("<li data-id=\"CHG0001235\""), std::string::npos);
  EXPECT_NE(upcoming.find("<time datetime=\"2026-12-19T08:00:00Z\">Sat 19 Dec 2026 02:00 CST</time>"
                          " to <time datetime=\"2026-12-19T12:00:00Z\">Sat 19 Dec 2026 06:00 CST"
                          "</time> (4 h)"),
            std::string::npos)
      << upcoming;
  const std::string restored = section(html, "recent-restorations");
  EXPECT_EQ(count(restored, "<li data-id="), 0u);
  EXPECT_NE(restored.find("<p class=\"none\">"), std::string::npos);

  EXPECT_NE(html.find("<a href=\"http://127.0.0.1:8080/maintenance.ics\">"), std::string::npos);
  EXPECT_NE(html.find("Times are shown in America/Chicago."), std::string::npos);
}

TEST(StatusPage, FetchesNothingAndRunsNothing) {
  const std::string html = render_status_html(page());
  EXPECT_NE(html.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'\">"),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("<link rel=\"stylesheet\""), std::string::npos);
}

TEST(StatusPage, AllOperationalAndUtcWithoutZone) {
  StatusPage p = page();
  p.zone = "";
  for (auto& service : p.services) service.state = "operational";
  const std::string html = render_status_html(p);
  EXPECT_NE(html.find("<p id=\"overall\" data-state=\"operational\">All systems operational</p>"),
            std::string::npos);
  EXPECT_NE(html.find("<time datetime=\"2026-12-12T08:00:00Z\">Sat 12 Dec 2026 08:00 UTC</time>"),
            std::string::npos);
  EXPECT_NE(html.find("Times are shown in UTC."), std::string::npos);
}

TEST(StatusPage, UnknownZoneIsAnError) {
  StatusPage p = page();
  p.zone = "Mars/Olympus_Mons";
  EXPECT_THROW(render_status_html(p), TimeError);
}

TEST(StatusPage, Json) {
  StatusPage p = page();
  p.recent_restorations = {{"INC0001200", "mysql-qa", "Disk full", "interruption",
                            at("2026-12-11T10:00:00Z"), at("2026-12-11T10:20:00Z"), ""}};
  EXPECT_EQ(status_json(p), Json::parse(R"json({
    "generated_at": "2026-12-12T08:00:00Z",
    "overall": "outage",
    "services": [
      {"id": "oracle-prod", "name": "Oracle Database (Production)", "environment": "production",
       "state": "outage", "detail": "Listener down"},
      {"id": "mysql-qa", "name": "MySQL (QA)", "environment": "qa", "state": "operational",
       "detail": ""},
      {"id": "web", "name": "<Web> & 'Portal'", "environment": "production", "state": "degraded",
       "detail": "Slow \"search\""}],
    "open_interruptions": [
      {"id": "INC0001234", "service": "oracle-prod", "title": "Listener <down>",
       "kind": "interruption", "start": "2026-12-12T06:45:00Z", "end": null,
       "link": "http://127.0.0.1:8080/alerts/TA-000003?a=1&b=2"}],
    "upcoming_maintenance": [
      {"id": "CHG0001234", "service": "oracle-prod", "title": "Quarterly patching",
       "kind": "planned_outage", "start": "2026-12-19T08:00:00Z", "end": "2026-12-19T12:00:00Z",
       "link": ""},
      {"id": "CHG0001235", "service": "mysql-qa", "title": "Upgrade",
       "kind": "planned_non_disruptive", "start": "2026-12-20T15:00:00Z",
       "end": "2026-12-20T15:30:00Z", "link": ""}],
    "recent_restorations": [
      {"id": "INC0001200", "service": "mysql-qa", "title": "Disk full", "kind": "interruption",
       "start": "2026-12-11T10:00:00Z", "end": "2026-12-11T10:20:00Z", "link": ""}]
  })json"));
}

}  // namespace
}  // namespace slmhub::alerts
