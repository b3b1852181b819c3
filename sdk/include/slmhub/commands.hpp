// CLI subcommands contributed by plugins (`slmhub report availability ...`). A command runs
// without the HTTP server; it returns a sysexits status (0, 64 usage, 65 data, 66 no
// input, 73 cannot create output, 75 temporary failure).
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace slmhub {

// Exit statuses of `sysexits.h`, shared by the host's commands and the plugins' (DESIGN.md §5.1).
namespace exit_code {
inline constexpr int kOk = 0;
inline constexpr int kUsage = 64;
inline constexpr int kDataErr = 65;
inline constexpr int kNoInput = 66;
inline constexpr int kSoftware = 70;  // an internal error: a process killed by a signal
inline constexpr int kCantCreate = 73;
inline constexpr int kTempFail = 75;
inline constexpr int kConfig = 78;
}  // namespace exit_code

struct CommandSpec {
  std::string name;   // words after `slmhub`, e.g. "report availability"
  std::string usage;  // "--input DATASET.json --month YYYY-MM [--format json|csv|html]"
  std::string help;   // what it does, one paragraph
  std::function<int(const std::vector<std::string>& args, std::ostream& out, std::ostream& err)>
      run;
};

class Commands {
 public:
  virtual ~Commands() = default;
  virtual void add(CommandSpec command) = 0;
};

}  // namespace slmhub
