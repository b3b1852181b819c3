// The report page as text: escaping, exact money and duration formatting, met / missed
// placement, integer chart geometry, and a page that references nothing outside itself.
// (tests/integration/page_test.cpp renders the vector's page in Chromium.)
#include "report_html.hpp"
#include "slmhub/digest.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace slmhub::availability {
namespace {

// A detailed report by hand, in the shape detailed_report_json produces: the
// vector's oracle-prod (missed) and a met service.
Json detailed_report() {
  return Json::parse(R"json({
    "month": "2026-11",
    "services": [
      {"service": "mysql-qa", "name": "MySQL database (QA)", "environment": "qa",
       "timezone": "America/Chicago",
       "period": {"start": "2026-11-01T05:00:00Z", "end": "2026-12-01T06:00:00Z"},
       "target_percent": 99.57, "scheduled_seconds": 615600,
       "excluded_maintenance_seconds": 0, "downtime_seconds": 600,
       "allowed_downtime_seconds": 2647, "excess_downtime_seconds": 0,
       "availability_percent": 99.9025, "met": true,
       "interruptions": ["INC0009"], "maintenance_downtime": [],
       "customers_impacted": ["registrar"],
       "maintenance_budget_seconds": 144000, "maintenance_budget_used_seconds": 0,
       "timeline": [
         {"id": "INC0009", "kind": "interruption", "start": "2026-11-10T15:00:00Z",
          "end": "2026-11-10T15:10:00Z", "seconds": 600, "customers": ["registrar"]}]},
      {"service": "oracle-prod", "name": "Oracle database (Production)",
       "environment": "production", "timezone": "America/Chicago",
       "period": {"start": "2026-11-01T05:00:00Z", "end": "2026-12-01T06:00:00Z"},
       "target_percent": 99.75, "scheduled_seconds": 2581200,
       "excluded_maintenance_seconds": 14400, "downtime_seconds": 15000,
       "allowed_downtime_seconds": 6453, "excess_downtime_seconds": 8547,
       "availability_percent": 99.4189, "met": false,
       "interruptions": ["INC0001", "INC0002", "INC0003"], "maintenance_downtime": ["CHG0002"],
       "customers_impacted": ["library", "registrar"],
       "maintenance_budget_seconds": 144000, "maintenance_budget_used_seconds": 14400,
       "timeline": [
         {"id": "INC0001", "kind": "interruption", "start": "2026-11-03T14:00:00Z",
          "end": "2026-11-03T14:50:00Z", "seconds": 3000, "customers": ["registrar"]},
         {"id": "CHG0001", "kind": "excluded_maintenance", "start": "2026-11-08T08:00:00Z",
          "end": "2026-11-08T12:00:00Z", "seconds": 14400, "customers": ["library", "registrar"]},
         {"id": "CHG0002", "kind": "maintenance_downtime", "start": "2026-11-15T08:00:00Z",
          "end": "2026-11-15T10:00:00Z", "seconds": 7200, "customers": ["library", "registrar"]},
         {"id": "INC0005", "kind": "interruption", "start": "2026-11-16T05:30:00Z",
          "end": "2026-11-16T06:00:30Z", "seconds": 0, "customers": ["library", "registrar"]}]}
    ],
    "credits": [
      {"customer": "library", "customer_name": "University Libraries", "billing_code": "LIB-200",
       "service": "oracle-prod", "downtime_seconds": 13200, "excess_downtime_seconds": 6747,
       "monthly_charge_cents": 90000, "credit_cents": 235,
       "interruptions": ["INC0002", "INC0003"], "maintenance_downtime": ["CHG0002"]},
      {"customer": "registrar", "customer_name": "Office of the Registrar",
       "billing_code": "REG-100", "service": "oracle-prod", "downtime_seconds": 15000,
       "excess_downtime_seconds": 8547, "monthly_charge_cents": 150000, "credit_cents": 497,
       "interruptions": ["INC0001", "INC0002", "INC0003"], "maintenance_downtime": ["CHG0002"]}
    ]
})json");
}

PageMeta computed() { return PageMeta{.state = "computed"}; }

// The markup of the service section `id`, from its opening tag to its closing one.
std::string section(const std::string& html, const std::string& id) {
  const auto start = html.find("<section class=\"service\" data-service=\"" + id + "\"");
  if (start == std::string::npos) return {};
  return html.substr(start, html.find("</section>", start) - start);
}

TEST(ReportHtml, EscapeHtml) {
  EXPECT_EQ(escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  EXPECT_EQ(escape_html("Université Libre"), "Université Libre");
  EXPECT_EQ(escape_html(""), "");
}

TEST(ReportHtml, HostileNamesAreText) {
  Json report = detailed_report();
  report["services"][1]["name"] = "<script>alert(1)</script>";
  report["services"][1]["timeline"][0]["id"] = "INC\"><img src=x onerror=alert(1)>";
  report["credits"][0]["customer_name"] = "Libraries</td><script>steal()</script>";
  report["credits"][0]["billing_code"] = "'><b>";
  const std::string html = render_report_html(report, computed());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("data-entry=\"INC&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""),
            std::string::npos);
  EXPECT_NE(html.find("Libraries&lt;/td&gt;&lt;script&gt;steal()&lt;/script&gt;"),
            std::string::npos);
}

TEST(ReportHtml, FormatCents) {
  EXPECT_EQ(format_cents(0), "0.00");
  EXPECT_EQ(format_cents(5), "0.05");
  EXPECT_EQ(format_cents(235), "2.35");
  EXPECT_EQ(format_cents(90000), "900.00");
  EXPECT_EQ(format_cents(-100), "-1.00");
  EXPECT_EQ(format_cents(-5), "-0.05");
  EXPECT_EQ(format_cents(100000), "1,000.00");
  EXPECT_EQ(format_cents(123456789), "1,234,567.89");
  EXPECT_EQ(format_cents(std::numeric_limits<int64_t>::min()), "-92,233,720,368,547,758.08");
  EXPECT_EQ(format_cents(std::numeric_limits<int64_t>::max()), "92,233,720,368,547,758.07");
}

TEST(ReportHtml, FormatDuration) {
  EXPECT_EQ(format_duration(0), "0 s");
  EXPECT_EQ(format_duration(59), "59 s");
  EXPECT_EQ(format_duration(100), "1 min 40 s");
  EXPECT_EQ(format_duration(3600), "1 h 0 min 0 s");
  EXPECT_EQ(format_duration(6453), "1 h 47 min 33 s");
  EXPECT_EQ(format_duration(15000), "4 h 10 min 0 s");
  EXPECT_EQ(format_duration(2581200), "717 h 0 min 0 s");
  EXPECT_EQ(format_duration(-61), "-1 min 1 s");
}

TEST(ReportHtml, MetAndMissedSections) {
  const std::string html = render_report_html(detailed_report(), computed());
  const auto met_heading = html.find("<h2 class=\"met\">Services that met their SLA</h2>");
  const auto missed_heading = html.find("<h2 class=\"missed\">Services that missed their SLA</h2>");
  const auto credits_heading = html.find("<h2 class=\"credits\">");
  const auto met = html.find("data-service=\"mysql-qa\"");
  const auto missed = html.find("data-service=\"oracle-prod\"");
  ASSERT_NE(met_heading, std::string::npos);
  ASSERT_NE(missed_heading, std::string::npos);
  EXPECT_LT(met_heading, met);
  EXPECT_LT(met, missed_heading);
  EXPECT_LT(missed_heading, missed);
  EXPECT_LT(missed, credits_heading);

  // Met: downtime against the SLA, no per-interruption detail.
  const std::string qa = section(html, "mysql-qa");
  EXPECT_NE(qa.find("data-met=\"true\""), std::string::npos);
  EXPECT_NE(qa.find("<data value=\"600\" data-field=\"downtime_seconds\">600</data>"),
            std::string::npos);
  EXPECT_NE(qa.find("<data value=\"2647\" data-field=\"allowed_downtime_seconds\">"),
            std::string::npos);
  EXPECT_EQ(qa.find("Related SIAs"), std::string::npos);
  EXPECT_EQ(qa.find("<tr data-entry="), std::string::npos);

  // Missed: downtime, excess, each entry with its counted seconds and customers, the SIAs.
  const std::string prod = section(html, "oracle-prod");
  EXPECT_NE(prod.find("data-met=\"false\""), std::string::npos);
  EXPECT_NE(prod.find("<td>4 h 10 min 0 s</td><td class=\"num\"><data value=\"15000\" "
                      "data-field=\"downtime_seconds\">15000</data> s</td>"),
            std::string::npos);
  EXPECT_NE(prod.find("<data value=\"8547\" data-field=\"excess_downtime_seconds\">"),
            std::string::npos);
  EXPECT_NE(prod.find("<data value=\"99.4189\" data-field=\"availability_percent\">99.4189"),
            std::string::npos);
  EXPECT_NE(prod.find("<data value=\"99.75\" data-field=\"target_percent\">99.75"),
            std::string::npos);
  const auto inc1 = prod.find("<tr data-entry=\"INC0001\">");
  ASSERT_NE(inc1, std::string::npos);
  const std::string row = prod.substr(inc1, prod.find("</tr>", inc1) - inc1);
  EXPECT_NE(row.find("<time datetime=\"2026-11-03T14:00:00Z\">2026-11-03 08:00 CST</time>"),
            std::string::npos)
      << row;
  EXPECT_NE(row.find("<data value=\"3000\" data-field=\"seconds\">3000</data>"), std::string::npos);
  EXPECT_NE(row.find("<td>registrar</td>"), std::string::npos) << row;
  // Seconds appear only when the instant has them.
  EXPECT_NE(prod.find(">2026-11-16 00:00:30 CST</time>"), std::string::npos);
  EXPECT_NE(prod.find("Related SIAs"), std::string::npos);
  EXPECT_NE(prod.find("<p data-field=\"sias\">None recorded.</p>"), std::string::npos);
}

TEST(ReportHtml, RelatedSiasFromMeta) {
  PageMeta meta{.state = "draft"};
  meta.sias["oracle-prod"] = {{"SIA-7", "INC0001", "submitted"}};
  const std::string prod = section(render_report_html(detailed_report(), meta), "oracle-prod");
  EXPECT_NE(prod.find("<li data-sia=\"SIA-7\">SIA-7 for INC0001 (submitted)</li>"),
            std::string::npos);
  EXPECT_EQ(prod.find("None recorded."), std::string::npos);
}

TEST(ReportHtml, CreditsTable) {
  const std::string html = render_report_html(detailed_report(), computed());
  const auto row = html.find("<tr data-credit=\"library/oracle-prod\">");
  ASSERT_NE(row, std::string::npos);
  const std::string library = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_NE(library.find("University Libraries"), std::string::npos);
  EXPECT_NE(library.find("<td>LIB-200</td>"), std::string::npos);
  EXPECT_NE(library.find("<data value=\"90000\" data-field=\"monthly_charge_cents\">900.00</data>"),
            std::string::npos);
  EXPECT_NE(library.find("<data value=\"235\" data-field=\"credit_cents\">2.35</data>"),
            std::string::npos);
  EXPECT_NE(html.find("<data value=\"732\" data-field=\"total_credit_cents\">7.32</data>"),
            std::string::npos);

  Json none = detailed_report();
  none["credits"] = Json::array();
  EXPECT_NE(render_report_html(none, computed()).find("No credits"), std::string::npos);
}

// Chart geometry is integer arithmetic on the figures: the plot is 600 units wide from x=110.
TEST(ReportHtml, ChartGeometry) {
  const std::string prod =
      section(render_report_html(detailed_report(), computed()), "oracle-prod");
  // Availability 99.4189 % against 99.75 %: the axis runs 99 %-100 %, the bar is 4189/10000 of
  // it, the target marker at 7500/10000.
  EXPECT_NE(prod.find("<rect x=\"110\" y=\"16\" width=\"251\" height=\"20\" fill=\"#c62828\"/>"),
            std::string::npos);
  EXPECT_NE(prod.find("<line x1=\"560\" y1=\"13\" x2=\"560\" y2=\"39\""), std::string::npos);
  EXPECT_NE(prod.find(">99 %</text>"), std::string::npos);
  // Downtime 15000 against 6453 allowed: 258 units within the limit, the excess in red after.
  EXPECT_NE(prod.find("<rect x=\"110\" y=\"16\" width=\"258\" height=\"20\" fill=\"#2e7d32\"/>"),
            std::string::npos);
  EXPECT_NE(prod.find("<rect x=\"368\" y=\"16\" width=\"342\" height=\"20\" fill=\"#c62828\"/>"),
            std::string::npos);
  // CHG0002, the third row, starts 1,220,400 s into the 2,595,600 s month (DST makes it 30
  // days and an hour): 110 + 1220400 × 600 / 2595600 = 392; its 2 h are 1 unit, drawn 3 wide
  // to stay visible.
  EXPECT_NE(prod.find("<rect x=\"392\" y=\"61\" width=\"3\" height=\"12\" fill=\"#ef6c00\" "
                      "data-entry=\"CHG0002\">"),
            std::string::npos);
  // An interruption that counted nothing is grey.
  EXPECT_NE(prod.find("fill=\"#9e9e9e\" data-entry=\"INC0005\""), std::string::npos);
}

TEST(ReportHtml, SelfContained) {
  PageMeta meta{.state = "published",
                .revision = 3,
                .due_date = "2026-12-21",
                .analysis_deadline = "2026-12-30",
                .published_at = "2026-12-18T15:00:00Z"};
  Json report = detailed_report();
  report["as_of"] = "2026-11-30T12:00:00Z";
  const std::string html = render_report_html(report, meta);
  EXPECT_TRUE(
      html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
                       "charset=\"utf-8\">\n"));
  for (const char* external : {"http://", "https://", "src=", "href=", "url(", "@import", "<script",
                               "<link", "<img", "<iframe", "<object"}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(html.find("@media print"), std::string::npos);
  EXPECT_NE(html.find("<p class=\"month\">November 2026</p>"), std::string::npos);
  EXPECT_NE(html.find("<dt>Revision</dt><dd>3</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dt>Report due</dt><dd>2026-12-21</dd>"), std::string::npos);
  EXPECT_NE(html.find("<dt>Analysis due</dt><dd>2026-12-30</dd>"), std::string::npos);
  EXPECT_NE(html.find("<time datetime=\"2026-12-18T15:00:00Z\">2026-12-18 15:00 UTC</time>"),
            std::string::npos);
  EXPECT_NE(html.find("<dt>Figures as of</dt>"), std::string::npos);
  // A published report carries no "may still change" banner; anything else does.
  EXPECT_EQ(html.find("class=\"banner\""), std::string::npos);
  EXPECT_NE(render_report_html(report, computed()).find("class=\"banner\""), std::string::npos);
}

TEST(ReportHtml, PercentagesMustBePlainDecimals) {
  Json report = detailed_report();
  report["services"][1]["availability_percent"] = 99.41891;
  EXPECT_THROW(render_report_html(report, computed()), std::invalid_argument);
}

}  // namespace
}  // namespace slmhub::availability
