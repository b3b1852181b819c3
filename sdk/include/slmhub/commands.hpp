// CLI subcommands contributed by plugins (`slmhub report availability ...`). A command runs
// without the HTTP server; it returns a sysexits status (0, 64 usage, 65 data, 66 no
// input, 73 cannot create output, 75 temporary failure).
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace slmhub {

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
