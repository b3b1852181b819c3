// The fuzz checks (docs/fuzzing.md): one function per parser that takes outside input. Each
// runs one input through the parser and checks what its contract promises; the libFuzzer
// entry (fuzz_entry.cpp) and the regression test (regression_test.cpp) call the same
// function, so an input that once failed stays a test.
//
// An input may be refused the way the parser documents (a ValidationError, a CronError, ...);
// a check catches only those. Anything else is a finding: a crash or sanitizer report, an
// exception the parser does not document, a hang, or a broken property (a Finding).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "slmhub/errors.hpp"
#include "slmhub/utf8.hpp"

namespace slmhub::fuzz {

// A property the input broke; it escapes the check, so libFuzzer records a crash and the
// regression test fails with the message.
struct Finding : std::logic_error {
  using std::logic_error::logic_error;
};

inline void expect(bool ok, const std::string& what) {
  if (!ok) throw Finding(what);
}

// The problem's texts on one line for a Finding's message.
std::string describe(const Problem& problem);
// What the host writes of a Problem into its problem+json answer (title, detail, each error's
// path and message) is valid UTF-8, and a ValidationError names at least one error.
void check_problem(const Problem& problem, std::string_view what);

void check_json(std::string_view input);
void check_dataset(std::string_view input);
void check_cron(std::string_view input);
void check_mime(std::string_view input);
void check_mime_header(std::string_view input);
void check_mail_address(std::string_view input);
void check_html_text(std::string_view input);
void check_sn_webhook(std::string_view input);
void check_sn_record(std::string_view input);
void check_sn_link(std::string_view input);
void check_http(std::string_view input);
void check_mustache(std::string_view input);

}  // namespace slmhub::fuzz
