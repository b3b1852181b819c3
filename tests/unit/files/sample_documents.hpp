// The documents the file writer tests export, and the helpers they share: a scratch directory
// removed afterwards and a shell command's exit status and output (the tests check the files
// with the tools accounting uses: xmllint and Python's csv module).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "document.hpp"

namespace slmhub::files::test {

// A month with every line kind: three charges, an SLA credit larger than them, and the
// carry_forward line that brings the total back to zero (DOMAIN.md §9: never negative).
inline Document invoice_with_carry_forward() {
  Document doc;
  doc.kind = DocumentKind::invoice;
  doc.number = "INV-FY2027-000001";
  doc.issue_date = "2027-04-01";
  doc.due_date = "2027-04-30";
  doc.period_start = "2027-03-01";
  doc.period_end = "2027-03-31";
  doc.currency = "USD";
  doc.note = "Credit of 402.00 carried forward to the next invoice.";
  doc.supplier = {"PROV-IT", "State IT Services", "billing@it.example.gov"};
  doc.customer = {"DOT-042", "Department of Transport", "ap@dot.example.gov"};
  doc.lines = {
      {"1", "subscription", "Managed hosting \xE2\x80\x94 March 2027", 1000, "MON", 150000, 150000,
       "2027-03-01", "2027-03-31", "svc-hosting"},
      {"2", "time", "Support: printer \"queue\" migration, phase 2\nafter hours", 1250, "HUR",
       12000, 15000, "2027-03-14", "2027-03-14", "TCK-1001"},
      {"3", "oncall", "On-call cover, 2 weeks", 2000, "WEE", 22400, 44800, "2027-03-10",
       "2027-03-20", "ONC-7"},
      {"4", "credit", "SLA credit: hosting availability February 2027", 1000, "C62", -250000,
       -250000, "", "", "INC0012345, INC0012346"},
      {"5", "carry_forward", "Credit carried forward to the next invoice", 1000, "C62", 0, 40200,
       "", "", ""},
  };
  doc.total_cents = 0;
  return doc;
}

inline Document plain_invoice() {
  Document doc;
  doc.number = "INV-FY2027-000002";
  doc.issue_date = "2027-04-01";
  doc.due_date = "2027-04-30";
  doc.period_start = "2027-03-01";
  doc.period_end = "2027-03-31";
  doc.currency = "USD";
  doc.supplier = {"PROV-IT", "State IT Services", ""};
  doc.customer = {"EDU-007", "Education, Department of", ""};
  doc.lines = {
      {"1", "subscription", "Mail service", 1000, "MON", 32050, 32050, "2027-03-01", "2027-03-31",
       "svc-mail"},
      {"2", "time", "Project work", 500, "HUR", 12000, 6000, "", "", "TCK-2002"},
      {"3", "adjustment", "Dispute D-9 lowered a credit", 1000, "C62", 5, 5, "", "", "CR-3#ev-9"},
  };
  doc.total_cents = 38055;
  return doc;
}

inline Document credit_note() {
  Document doc;
  doc.kind = DocumentKind::credit_note;
  doc.number = "CN-FY2027-000001";
  doc.issue_date = "2027-04-03";
  doc.due_date = "2027-04-17";
  doc.period_start = "2027-03-01";
  doc.period_end = "2027-03-31";
  doc.currency = "USD";
  doc.billing_reference = "INV-FY2027-000002";
  doc.supplier = {"PROV-IT", "State IT Services", "billing@it.example.gov"};
  doc.customer = {"EDU-007", "Education, Department of", "ap@edu.example.gov"};
  doc.lines = {
      {"1", "oncall", "On-call week billed twice", 1000, "WEE", 22400, 22400, "2027-03-10",
       "2027-03-16", "ONC-8"},
      {"2", "time", "Time entry booked on the wrong customer", 250, "HUR", 12000, 3000, "", "",
       "TCK-2003"},
  };
  doc.total_cents = 25400;
  return doc;
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("slmhub-files-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// `text` as one shell word.
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct CommandResult {
  int status = -1;     // the exit status; -1 when it did not exit normally
  std::string output;  // stdout (and stderr when the command redirects it)
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) {
    result.output.append(buffer, n);
  }
  const int raw = ::pclose(pipe);
  result.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

}  // namespace slmhub::files::test
