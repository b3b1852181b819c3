// Helpers the checks share.
#include "checks.hpp"

namespace slmhub::fuzz {

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((length == 3 && cp < 0x800) || (length == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

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
