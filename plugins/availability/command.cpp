// The `report availability` command: argument parsing, dataset reading with one error line
// per problem, and atomic output (temp file in the target's folder + rename), so a reader of
// --out FILE sees the old file or the whole new one, never a partial report.
#include "command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <system_error>

#include "engine.hpp"
#include "report_csv.hpp"
#include "report_html.hpp"
#include "report_json.hpp"
#include "slmhub/commands.hpp"
#include "slmhub/domain.hpp"
#include "slmhub/json.hpp"

namespace slmhub::availability {
namespace {

using namespace exit_code;

constexpr const char* kPrefix = "slmhub report availability: ";

int usage(std::ostream& err, const std::string& message) {
  err << kPrefix << message << "\n";
  err << "usage: slmhub " << kReportCommandName << " " << kReportCommandUsage << "\n";
  return kUsage;
}

// Writes `text` to `path` through a temp file beside it; false (with errno's text in `why`)
// when any step fails, in which case the temp file is gone and `path` untouched.
bool write_atomically(const std::string& path, const std::string& text, std::string& why) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    why = std::strerror(errno);
    return false;
  }
  const char* data = text.data();
  std::size_t left = text.size();
  bool ok = true;
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  // mkstemp creates 0600; a report is an ordinary file.
  if (ok && ::fchmod(fd, 0644) != 0) ok = false;
  if (ok && ::fsync(fd) != 0) ok = false;
  if (::close(fd) != 0) ok = false;
  if (ok && std::rename(temp.c_str(), path.c_str()) != 0) ok = false;
  if (!ok) {
    why = std::strerror(errno);
    ::unlink(temp.c_str());
  }
  return ok;
}

}  // namespace

int run_report_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  static const std::set<std::string, std::less<>> kFlags = {"--input",  "--month", "--as-of",
                                                            "--format", "--out",   "--config"};
  std::map<std::string, std::string, std::less<>> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (!kFlags.contains(name)) return usage(err, "unexpected argument '" + args[i] + "'");
    if (!value) {
      if (i + 1 >= args.size()) return usage(err, name + " needs a value");
      value = args[++i];
    }
    if (flags.contains(name)) return usage(err, name + " given twice");
    flags[name] = *value;
  }
  // --config belongs to the host (it may pass it through); the offline report needs none.
  if (!flags.contains("--input")) return usage(err, "--input DATASET.json is required");
  if (!flags.contains("--month")) return usage(err, "--month YYYY-MM is required");

  date::year_month month;
  std::optional<Instant> as_of;
  try {
    month = parse_month(flags["--month"]);
  } catch (const std::exception& e) {
    return usage(err, std::string("--month: ") + e.what());
  }
  if (auto it = flags.find("--as-of"); it != flags.end()) {
    try {
      as_of = parse_instant(it->second);
    } catch (const std::exception& e) {
      return usage(err, std::string("--as-of: ") + e.what());
    }
  }
  const std::string format = flags.contains("--format") ? flags["--format"] : "json";
  if (format != "json" && format != "csv" && format != "html")
    return usage(err, "--format must be json, csv or html, found '" + format + "'");

  const std::string& input = flags["--input"];
  std::error_code ec;
  if (!std::filesystem::is_regular_file(input, ec)) {
    const bool exists = !ec && std::filesystem::exists(input, ec);
    err << input << ": cannot read: "
        << (ec       ? ec.message()
            : exists ? "not a regular file"
                     : "no such file")
        << "\n";
    return kNoInput;
  }
  std::string report;
  try {
    DatasetReferences references;
    const Dataset dataset = read_dataset_file(input, references);
    // An instant before the month begins measures nothing: every service would be "met" at
    // 100 %, a report that looks like an answer. A month under way is what --as-of is for.
    if (const Interval span = month_span(dataset, month); as_of && *as_of < span.start) {
      return usage(err, "--as-of: " + format_instant(*as_of) + " is before " + format_month(month) +
                            " begins (" + format_instant(span.start) +
                            "): a month that has not begun has no report");
    }
    const AvailabilityReport computed = Engine(dataset, references).report(month, as_of);
    if (format == "csv") {
      report = report_to_csv(computed);
    } else if (format == "html") {
      // Offline there is no workflow behind the figures: the page says so ("computed").
      report = render_report_html(detailed_report_json(computed, dataset, as_of),
                                  PageMeta{.state = "computed"});
    } else {
      report = report_to_json(computed).dump(2) + "\n";
    }
  } catch (const Problem& e) {
    if (e.errors().empty()) {
      err << input << ": " << e.what() << "\n";
    }
    for (const auto& fe : e.errors()) err << input << ": " << fe.path << ": " << fe.message << "\n";
    return kDataErr;
  } catch (const TimeError& e) {
    err << input << ": " << e.what() << "\n";
    return kDataErr;
  } catch (const std::system_error& e) {
    err << input << ": cannot read: " << e.code().message() << "\n";
    return kNoInput;
  }

  if (auto it = flags.find("--out"); it != flags.end()) {
    std::string why;
    if (!write_atomically(it->second, report, why)) {
      err << it->second << ": cannot create: " << why << "\n";
      return kCantCreate;
    }
  } else {
    errno = 0;  // what the write sets, not what an earlier call left
    out << report;
    out.flush();
    // A full disk or a closed pipe: a cut report must not look like a whole one.
    if (!out) {
      err << "standard output: cannot write the report"
          << (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()) << "\n";
      return kCantCreate;
    }
  }
  return kOk;
}

}  // namespace slmhub::availability
