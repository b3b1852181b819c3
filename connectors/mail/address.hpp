// E-mail addresses as slmhub compares them: the addr-spec only (no display name, no angle
// brackets), the domain lower-cased (RFC 5321 §2.4: the local part is case-sensitive in
// principle, but every mail system slmhub meets treats it as case-insensitive, and so do
// contact lookups: the whole address is lower-cased).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace slmhub::mail {

// "Ann Example <Ann@Example.ORG>" → "ann@example.org"; "<>" or text without a plausible
// addr-spec → nullopt.
std::optional<std::string> normalize_address(std::string_view text);

// The domain of a normalized address ("example.org"); "" when there is none.
std::string_view address_domain(std::string_view address);

}  // namespace slmhub::mail
