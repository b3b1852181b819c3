#include "address.hpp"

#include <algorithm>
#include <cctype>

namespace slmhub::mail {

std::optional<std::string> normalize_address(std::string_view text) {
  // Prefer what is inside the last <...>; otherwise the whole text.
  std::string_view spec = text;
  if (const auto close = text.rfind('>'); close != std::string_view::npos) {
    const auto open = text.rfind('<', close);
    if (open == std::string_view::npos) return std::nullopt;
    spec = text.substr(open + 1, close - open - 1);
  }
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.front()))) {
    spec.remove_prefix(1);
  }
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back()))) {
    spec.remove_suffix(1);
  }
  const auto at = spec.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == spec.size()) return std::nullopt;
  if (std::any_of(spec.begin(), spec.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) || c == '<' || c == '>' || c == ',';
      })) {
    return std::nullopt;
  }
  std::string out(spec);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view address_domain(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

}  // namespace slmhub::mail
