// normalize_address, which every From/To/Reply-To and contact lookup goes through: it accepts
// only an addr-spec with an @ inside (no blanks, angle brackets or commas), lower-cases it, is
// idempotent, and address_domain of the result is what follows its last @.
#include <string>

#include "address.hpp"
#include "checks.hpp"

namespace slmhub::fuzz {

void check_mail_address(std::string_view input) {
  const auto address = mail::normalize_address(input);
  if (!address) return;
  expect(!address->empty(), "normalize_address returns an empty address");
  const auto at = address->rfind('@');
  expect(at != std::string::npos && at > 0 && at + 1 < address->size(),
         "normalize_address returns no local part @ domain: " + *address);
  for (char c : *address) {
    expect(!(c >= 'A' && c <= 'Z'), "normalize_address keeps an upper-case letter: " + *address);
    expect(c != ' ' && c != '<' && c != '>' && c != ',',
           "normalize_address keeps a blank, bracket or comma: " + *address);
  }
  const auto again = mail::normalize_address(*address);
  expect(again && *again == *address, "normalize_address is not idempotent: " + *address);
  expect(mail::address_domain(*address) == std::string_view(*address).substr(at + 1),
         "address_domain is not what follows the last @");
}

}  // namespace slmhub::fuzz
