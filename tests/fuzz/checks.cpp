// Helpers the checks share.
#include "checks.hpp"

namespace slmhub::fuzz {

std::string describe(const Problem& problem) {
  std::string text =
      std::to_string(problem.status()) + " " + problem.title() + ": " + problem.detail();
  for (const auto& e : problem.errors()) text += " [" + e.path + ": " + e.message + "]";
  return text;
}

void check_problem(const Problem& problem, std::string_view what) {
  const std::string where(what);
  expect(valid_utf8(problem.title()) && valid_utf8(problem.detail()),
         where + ": a problem text is not UTF-8: " + describe(problem));
  for (const auto& e : problem.errors()) {
    expect(valid_utf8(e.path) && valid_utf8(e.message),
           where + ": an error text is not UTF-8: " + describe(problem));
  }
  if (dynamic_cast<const ValidationError*>(&problem) != nullptr) {
    expect(!problem.errors().empty(), where + ": a ValidationError names no error");
  }
}

}  // namespace slmhub::fuzz
