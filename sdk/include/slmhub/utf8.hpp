// Well-formed UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, nothing past U+10FFFF),
// checked where text enters or leaves: mail parsing and composing, the JSON writers.
#pragma once

#include <cstddef>
#include <string_view>

namespace slmhub {

// The first index at or after `at` whose byte is not ASCII (text.size() when none); eight
// bytes at a time.
std::size_t skip_ascii(std::string_view text, std::size_t at);
// The length of the well-formed UTF-8 sequence starting at text[at] (1 for ASCII), 0 when
// there is none there.
std::size_t utf8_sequence(std::string_view text, std::size_t at);
bool valid_utf8(std::string_view text);

}  // namespace slmhub
