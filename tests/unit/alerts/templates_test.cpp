// Tech Alert templates: every mistake in a template is refused at load with the file and line
// of the offending tag, overrides replace and add templates, and rendering escapes for HTML
// only where HTML is produced.
#include "templates.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace slmhub::alerts {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kKinds = {"planned_outage", "emergency", "restoration"};

// The error message of constructing Templates, "" when it loads.
std::string load_error(std::map<std::string, std::string> builtin, const std::string& dir = "",
                       const Json& sample = sample_context()) {
  try {
    Templates templates(std::move(builtin), dir, kKinds, sample);
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "";
}

Templates only(const std::string& name, const std::string& text,
               const Json& sample = sample_context()) {
  return Templates({{name, text}}, "", kKinds, sample);
}

// A fresh directory under the system's temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("slmhub-alerts-templates-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& file, const std::string& text) const {
    std::ofstream(path_ / file, std::ios::binary) << text;
    return (path_ / file).string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

Json context_with_title(const std::string& title) {
  Json context = sample_context();
  context["alert"]["title"] = title;
  return context;
}

// ---- rendering ---------------------------------------------------------------------------

TEST(TemplatesRender, HtmlPartsEscapeDoubleBracesAndLeaveTripleAndAmpersandRaw) {
  const Templates t =
      only("default.email.html", "<p>{{alert.title}}|{{{alert.title}}}|{{& alert.title}}</p>");
  EXPECT_EQ(t.render("planned_outage", "email", "html", context_with_title("A & B <c> \"d\" 'e'")),
            "<p>A &amp; B &lt;c&gt; &quot;d&quot; &#39;e&#39;|A & B <c> \"d\" 'e'|"
            "A & B <c> \"d\" 'e'</p>");
}

TEST(TemplatesRender, TextAndWebhookPartsEscapeNothing) {
  const Templates t(
      {{"default.email.text", "{{alert.title}}"}, {"default.webhook.text", "{{alert.title}}!"}}, "",
      kKinds, sample_context());
  const Json context = context_with_title("A & B <c> \"d\" 'e'");
  EXPECT_EQ(t.render("emergency", "email", "text", context), "A & B <c> \"d\" 'e'");
  EXPECT_EQ(t.render("emergency", "webhook", "text", context), "A & B <c> \"d\" 'e'!");
}

TEST(TemplatesRender, SubjectIsOneTrimmedLine) {
  const Templates t = only("default.email.subject", "  Notice:\n\n  {{alert.title}}  \r\n");
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context_with_title("two\nlines")),
            "Notice: two lines");
  // Blanks without a line break are the author's and stay.
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context_with_title("a  b")),
            "Notice: a  b");
  // Subjects are not HTML.
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context_with_title("R&D <x>")),
            "Notice: R&D <x>");
}

TEST(TemplatesRender, BooleansIntegersNullAndEmptyStrings) {
  const Templates t =
      only("default.email.text",
           "{{#alert.is_update}}update {{alert.sequence}}{{/alert.is_update}}"
           "{{^alert.is_update}}new{{/alert.is_update}}|{{#alert.window}}({{alert.window}}){{/"
           "alert.window}}"
           "|{{^alert.refers_to}}no reference{{/alert.refers_to}}|[{{alert.refers_to}}]");
  Json context = sample_context();
  context["alert"]["is_update"] = true;
  context["alert"]["sequence"] = 3;
  EXPECT_EQ(t.render("planned_outage", "email", "text", context),
            "update 3|(Sat 12 Dec 2026 02:00\u201306:00 CST)||[TA-000000]");
  context["alert"]["is_update"] = false;
  context["alert"]["window"] = "";  // empty text is false in a section
  context["alert"]["refers_to"] = nullptr;
  EXPECT_EQ(t.render("planned_outage", "email", "text", context), "new||no reference|[]");
}

TEST(TemplatesRender, ListsRepeatAndNamesFallBackToOuterContext) {
  const Templates t = only("default.webhook.text",
                           "{{#services}}{{name}} ({{environment}}, {{alert.id}}); {{/services}}");
  Json context = sample_context();
  context["services"].push_back(
      {{"id", "mysql-qa"}, {"name", "MySQL (QA)"}, {"environment", "qa"}});
  EXPECT_EQ(t.render("planned_outage", "webhook", "text", context),
            "Oracle Database (Production) (production, TA-000001); MySQL (QA) (qa, TA-000001); ");
}

// The spec removes lines holding only section tags whatever the data; kainjow 4.1 alone
// would leave a blank line for a false section.
TEST(TemplatesRender, StandaloneSectionLinesLeaveNoBlankLine) {
  const Templates t =
      only("default.email.text",
           "A\n{{#alert.is_update}}\nU\n  {{/alert.is_update}}\r\nB\n"
           "{{! a comment\n over two lines }}\nC {{#alert.is_update}}u{{/alert.is_update}}\n");
  Json context = sample_context();
  EXPECT_EQ(t.render("planned_outage", "email", "text", context), "A\nB\nC \n");
  context["alert"]["is_update"] = true;
  EXPECT_EQ(t.render("planned_outage", "email", "text", context), "A\nU\nB\nC u\n");
}

// kainjow alone would also drop a blank line the author wrote once a section tag lands on it,
// and an output line that only came out blank.
TEST(TemplatesRender, BlankLinesTheAuthorWroteStay) {
  const Templates t = only("default.email.text",
                           "A\n{{#alert.is_update}}\nU\n{{/alert.is_update}}\n\nB\n"
                           "{{#alert.is_update}}{{alert.interruption}}{{/alert.is_update}}\nC");
  Json context = sample_context();
  EXPECT_EQ(t.render("planned_outage", "email", "text", context), "A\n\nB\n\nC");
  context["alert"]["is_update"] = true;
  context["alert"]["interruption"] = "";
  EXPECT_EQ(t.render("planned_outage", "email", "text", context), "A\nU\n\nB\n\nC");
}

TEST(TemplatesRender, KindTemplateElseDefaultElseOutOfRange) {
  const Templates t({{"default.email.text", "default"}, {"emergency.email.text", "emergency"}}, "",
                    kKinds, sample_context());
  EXPECT_EQ(t.render("emergency", "email", "text", sample_context()), "emergency");
  EXPECT_EQ(t.render("planned_outage", "email", "text", sample_context()), "default");
  EXPECT_EQ(t.origin("emergency", "email", "text"), "built-in emergency.email.text");
  EXPECT_EQ(t.origin("restoration", "email", "text"), "built-in default.email.text");
  EXPECT_THROW(t.render("emergency", "webhook", "text", sample_context()), std::out_of_range);
  EXPECT_THROW(t.origin("emergency", "email", "html"), std::out_of_range);
}

TEST(TemplatesRender, ConcurrentRendersShareOneParsedTemplate) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  const std::string expected = t.render("planned_outage", "email", "html", sample_context());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < 200; ++n) {
        if (t.render("planned_outage", "email", "html", sample_context()) != expected) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- the built-in templates ----------------------------------------------------------------

TEST(BuiltinTemplates, LoadAgainstTheSampleAndCoverEveryPart) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  EXPECT_EQ(t.names(), (std::vector<std::string>{"default.email.html", "default.email.subject",
                                                 "default.email.text", "default.webhook.text"}));
}

TEST(BuiltinTemplates, SubjectSaysNewUpdateOrCancelled) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  Json context = sample_context();
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context),
            "[TA-000001] Planned outage - Oracle Database (Production) patching "
            "(Sat 12 Dec 2026 02:00\u201306:00 CST)");
  context["alert"]["is_update"] = true;
  context["alert"]["window"] = "";
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context),
            "[TA-000001] Update: Planned outage - Oracle Database (Production) patching");
  context["alert"]["is_cancellation"] = true;
  EXPECT_EQ(t.render("planned_outage", "email", "subject", context),
            "[TA-000001] Cancelled: Planned outage - Oracle Database (Production) patching");
}

TEST(BuiltinTemplates, TextPart) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  EXPECT_EQ(t.render("planned_outage", "email", "text", sample_context()),
            "Example Data Centre Tech Alert TA-000001\n"
            "\n"
            "Planned outage: Oracle Database (Production) patching\n"
            "\n"
            "When:      Sat 12 Dec 2026 02:00\u201306:00 CST\n"
            "Services:\n"
            "  - Oracle Database (Production) (production)\n"
            "Change:    CHG0001234\n"
            "Incident:  INC0001234\n"
            "\n"
            "The production Oracle database will be unavailable while the quarterly security "
            "patches are applied.\nApplications that use it will show an error page during the "
            "window.\n"
            "\n"
            "Current status:       http://127.0.0.1:8080/status\n"
            "Maintenance calendar: http://127.0.0.1:8080/maintenance.ics\n"
            "\n"
            "--\n"
            "Sent to dba@example.org by Example Data Centre at 2026-11-20T15:00:00Z.\n"
            "Unsubscribe: http://127.0.0.1:8080/alerts/unsubscribe?address=dba%40example.org"
            "&token=3f9a2c\n");
}

TEST(BuiltinTemplates, TextPartOfACancellationWithoutWindow) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  Json context = sample_context();
  context["alert"]["is_cancellation"] = true;
  context["alert"]["is_update"] = true;
  context["alert"]["window"] = "";
  context["alert"]["maintenance"] = "";
  context["alert"]["interruption"] = "";
  const std::string text = t.render("planned_outage", "email", "text", context);
  EXPECT_EQ(text.substr(0, text.find("\n\nThe production")),
            "Example Data Centre Tech Alert TA-000001\n"
            "CANCELLED: this notice withdraws TA-000000.\n"
            "\n"
            "Planned outage: Oracle Database (Production) patching\n"
            "\n"
            "Start:     Sat 12 Dec 2026 02:00 CST\n"
            "End:       Sat 12 Dec 2026 06:00 CST\n"
            "Services:\n"
            "  - Oracle Database (Production) (production)");
  // An alert without times (an SLA announcement) has no Start or End line.
  context["alert"]["start_local"] = "";
  context["alert"]["end_local"] = "";
  const std::string timeless = t.render("planned_outage", "email", "text", context);
  EXPECT_EQ(timeless.find("Start:"), std::string::npos);
  EXPECT_NE(timeless.find("patching\n\nServices:\n"), std::string::npos) << timeless;
  EXPECT_EQ(t.render("planned_outage", "email", "html", context).find(">Start<"),
            std::string::npos);
}

TEST(BuiltinTemplates, HtmlPartIsSelfContainedEscapedAndCarriesTheUnsubscribeLink) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  Json context = context_with_title("Patch <script>alert(1)</script> & reboot");
  context["alert"]["is_update"] = true;
  context["alert"]["sequence"] = 2;
  const std::string html = t.render("planned_outage", "email", "html", context);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
  EXPECT_NE(html.find("Patch &lt;script&gt;alert(1)&lt;/script&gt; &amp; reboot"),
            std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find(">Update 2</span> This notice replaces TA-000000.</p>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"http://127.0.0.1:8080/alerts/unsubscribe?address=dba%40example.org"
                      "&amp;token=3f9a2c\""),
            std::string::npos);
  EXPECT_NE(html.find("white-space:pre-line;\">The production Oracle database"), std::string::npos);
  // Nothing a mail client would fetch.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("{{"), std::string::npos);
}

TEST(BuiltinTemplates, WebhookText) {
  const Templates t(builtin_templates(), "", kKinds, sample_context());
  Json context = sample_context();
  context["alert"]["is_cancellation"] = true;
  EXPECT_EQ(t.render("planned_outage", "webhook", "text", context),
            "CANCELLED [TA-000001] Planned outage: Oracle Database (Production) patching\n"
            "When: Sat 12 Dec 2026 02:00\u201306:00 CST\n"
            "Services:\n"
            "- Oracle Database (Production) (production)\n"
            "The production Oracle database will be unavailable while the quarterly security "
            "patches are applied.\nApplications that use it will show an error page during the "
            "window.\n"
            "Status: http://127.0.0.1:8080/status\n");
}

// ---- checks at load --------------------------------------------------------------------------

TEST(TemplatesCheck, UnknownVariableNamesFileAndLine) {
  EXPECT_EQ(load_error({{"default.email.text", "a\nb {{nope}}"}}),
            "built-in default.email.text:2: unknown variable 'nope'");
  EXPECT_EQ(load_error({{"default.email.html", "{{alert.id}}\n\n{{{alert.nope}}}"}}),
            "built-in default.email.html:3: unknown variable 'alert.nope'");
  EXPECT_EQ(load_error({{"default.email.html", "{{&recipient.addres}}"}}),
            "built-in default.email.html:1: unknown variable 'recipient.addres'");
  EXPECT_EQ(load_error({{"default.email.text", "{{#nope}}x{{/nope}}"}}),
            "built-in default.email.text:1: unknown variable 'nope'");
  EXPECT_EQ(load_error({{"default.email.text", "{{^alert.nope}}x{{/alert.nope}}"}}),
            "built-in default.email.text:1: unknown variable 'alert.nope'");
  EXPECT_EQ(load_error({{"default.email.text", "{{alert.}}"}}),
            "built-in default.email.text:1: unknown variable 'alert.'");
  // A multi-line comment before the tag still counts its lines.
  EXPECT_EQ(load_error({{"default.email.text", "{{! one\ntwo\nthree }} {{nope}}"}}),
            "built-in default.email.text:3: unknown variable 'nope'");
}

TEST(TemplatesCheck, SectionsPushTheFirstItemOrTheObject) {
  // An item's names exist only inside its list's section.
  EXPECT_EQ(load_error({{"default.email.text", "{{#services}}{{name}}{{/services}}"}}), "");
  EXPECT_EQ(load_error({{"default.email.text", "{{#services}}{{/services}}\n{{name}}"}}),
            "built-in default.email.text:2: unknown variable 'name'");
  EXPECT_EQ(load_error({{"default.email.text", "{{#alert}}{{title}} {{provider.name}}{{/alert}}"}}),
            "");
  // An inverted section renders only when its value is empty, so it offers no names.
  EXPECT_EQ(load_error({{"default.email.text", "{{^services}}{{name}}{{/services}}"}}),
            "built-in default.email.text:1: unknown variable 'name'");
}

TEST(TemplatesCheck, DotOnlyInsideASection) {
  const Json sample = {{"tags", Json::array({"urgent"})}, {"alert", {{"id", "TA-1"}}}};
  EXPECT_EQ(load_error({{"default.email.text", "{{#tags}}[{{.}}]{{/tags}}"}}, "", sample), "");
  EXPECT_EQ(load_error({{"default.email.text", "x {{.}}"}}, "", sample),
            "built-in default.email.text:1: '.' is only allowed inside a section");
  const Templates t = only("default.email.text", "{{#tags}}[{{.}}]{{/tags}}", sample);
  EXPECT_EQ(t.render("emergency", "email", "text", {{"tags", {"a", "b"}}}), "[a][b]");
}

TEST(TemplatesCheck, VariableNamingAListOrObjectIsRefused) {
  EXPECT_EQ(load_error({{"default.email.text", "\n{{services}}"}}),
            "built-in default.email.text:2: 'services' is a list and would print nothing; use "
            "{{#services}}...{{/services}}");
  EXPECT_EQ(load_error({{"default.email.text", "{{alert}}"}}),
            "built-in default.email.text:1: 'alert' is an object and would print nothing; use "
            "{{#alert}}...{{/alert}}");
}

TEST(TemplatesCheck, UnclosedAndMismatchedSections) {
  EXPECT_EQ(load_error({{"default.email.text", "x\n\n{{#services}}\n{{name}}\n"}}),
            "built-in default.email.text:3: unclosed section 'services'");
  EXPECT_EQ(load_error({{"default.email.text", "{{#services}}\n{{/alert}}"}}),
            "built-in default.email.text:2: '{{/alert}}' does not close section 'services' "
            "opened on line 1");
  EXPECT_EQ(load_error({{"default.email.text", "a\n{{/services}}"}}),
            "built-in default.email.text:2: '{{/services}}' closes no open section");
}

TEST(TemplatesCheck, UnclosedTags) {
  EXPECT_EQ(load_error({{"default.email.text", "line1\nline2 {{alert.id\nline3"}}),
            "built-in default.email.text:2: unclosed tag: '{{' without '}}'");
  EXPECT_EQ(load_error({{"default.email.html", "{{{alert.id}}"}}),
            "built-in default.email.html:1: unclosed tag: '{{{' without '}}}'");
  EXPECT_EQ(load_error({{"default.email.text", "{{ }}"}}),
            "built-in default.email.text:1: empty tag");
}

TEST(TemplatesCheck, PartialsAndDelimiterChangesAreRefused) {
  EXPECT_EQ(load_error({{"default.email.text", "ok\n{{> footer}}"}}),
            "built-in default.email.text:2: partials are not supported ({{> footer}})");
  EXPECT_EQ(load_error({{"default.email.text", "\n\n{{=<% %>=}}"}}),
            "built-in default.email.text:3: delimiter changes are not supported ({{=<% %>=}})");
}

TEST(TemplatesCheck, FirstErrorInNameOrder) {
  EXPECT_EQ(
      load_error({{"default.webhook.text", "{{nope_b}}"}, {"default.email.text", "{{nope_a}}"}}),
      "built-in default.email.text:1: unknown variable 'nope_a'");
}

TEST(TemplatesCheck, BadBuiltinNameIsRefused) {
  EXPECT_EQ(load_error({{"default.sms.text", "x"}}),
            "built-in default.sms.text: template name 'default.sms.text' is not "
            "<kind>.<channel>.<part> with kind one of default, planned_outage, emergency, "
            "restoration, and channel.part one of email.subject, email.text, email.html, "
            "webhook.text");
}

// ---- the override directory --------------------------------------------------------------

TEST(TemplatesOverride, FileReplacesBuiltinAndAddsKinds) {
  TempDir dir;
  const std::string subject = dir.write("default.email.subject.mustache", "Notice {{alert.id}}\n");
  const std::string html =
      dir.write("planned_outage.email.html.mustache", "<b>{{alert.title}}</b>");
  dir.write("README.txt", "{{not a template}}");  // ignored: not .mustache
  fs::create_directories(fs::path(dir.path()) / "emergency.email.text.mustache.d");
  const Templates t(builtin_templates(), dir.path(), kKinds, sample_context());
  EXPECT_EQ(t.render("emergency", "email", "subject", sample_context()), "Notice TA-000001");
  EXPECT_EQ(t.origin("emergency", "email", "subject"), subject);
  EXPECT_EQ(t.render("planned_outage", "email", "html", context_with_title("a<b")),
            "<b>a&lt;b</b>");
  EXPECT_EQ(t.origin("planned_outage", "email", "html"), html);
  // Other kinds and parts keep the built-ins.
  EXPECT_EQ(t.origin("emergency", "email", "html"), "built-in default.email.html");
  EXPECT_EQ(t.origin("planned_outage", "email", "text"), "built-in default.email.text");
  EXPECT_EQ(t.names().size(), 5u);
}

TEST(TemplatesOverride, ErrorsNameTheFile) {
  TempDir dir;
  const std::string path =
      dir.write("default.email.text.mustache", "Hello\n\n{{recipient.nmae}}\n");
  EXPECT_EQ(load_error(builtin_templates(), dir.path()),
            path + ":3: unknown variable 'recipient.nmae'");
}

TEST(TemplatesOverride, BadFileNamesAreRefused) {
  {
    TempDir dir;
    const std::string path = dir.write("planned_outage.sms.text.mustache", "x");
    EXPECT_EQ(
        load_error(builtin_templates(), dir.path())
            .rfind(
                path + ": template name 'planned_outage.sms.text' is not <kind>.<channel>.<part>",
                0),
        0u);
  }
  {
    TempDir dir;
    const std::string path = dir.write("nosuch.email.text.mustache", "x");
    EXPECT_EQ(load_error(builtin_templates(), dir.path())
                  .rfind(path + ": template name 'nosuch.email.text'", 0),
              0u);
  }
  {
    TempDir dir;
    const std::string path = dir.write("planned_outage.webhook.html.mustache", "x");
    EXPECT_EQ(load_error(builtin_templates(), dir.path()).rfind(path + ": template name", 0), 0u);
  }
  {
    TempDir dir;
    const std::string path = dir.write("planned_outage.email.mustache", "x");
    EXPECT_EQ(load_error(builtin_templates(), dir.path()).rfind(path + ": template name", 0), 0u);
  }
}

TEST(TemplatesOverride, MissingDirectoryIsAnError) {
  const std::string missing = (fs::temp_directory_path() / "slmhub-no-such-template-dir").string();
  const std::string error = load_error(builtin_templates(), missing);
  EXPECT_EQ(error.rfind(missing + ": cannot read the template directory: ", 0), 0u) << error;
}

}  // namespace
}  // namespace slmhub::alerts
