// `slmhub report availability`: the offline report from a dataset file (DESIGN.md §5.1). The
// logic lives here rather than in the plugin module so tests run it directly.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace slmhub::availability {

inline constexpr const char* kReportCommandName = "report availability";
inline constexpr const char* kReportCommandUsage =
    "--input DATASET.json --month YYYY-MM [--as-of ISO] [--format json|csv|html] [--out FILE]";
inline constexpr const char* kReportCommandHelp =
    "Computes availability and SLA credits for every service of a dataset file in one month "
    "and prints the report as JSON (DESIGN.md 5.4), CSV (a header row, one row per service "
    "and one per credit) or HTML (the self-contained, printable report page), to --out FILE "
    "(written atomically) or to stdout.";

// `args` are the words after `report availability`. Returns a sysexits status: 0 done, 64 bad
// usage, 65 bad dataset (one `FILE: $.path: message` line per problem on `err`), 66 input
// missing or unreadable, 73 output cannot be created. Never leaves a partial output file.
int run_report_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace slmhub::availability
