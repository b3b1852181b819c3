// Fingerprints and transfer encodings plugins need for what they store and send: SHA-256 of
// attachments and secrets, base64 for attachment content in JSON bodies. Implemented with
// OpenSSL inside the SDK, so no OpenSSL type reaches a plugin.
#pragma once

#include <string>
#include <string_view>

namespace slmhub {

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);

// Standard base64 (RFC 4648 §4) with padding.
std::string base64_encode(std::string_view data);
// Decodes standard base64; whitespace (line breaks of MIME bodies) is skipped. Throws
// std::invalid_argument naming the offset of the first character that is not base64 or the
// wrong length.
std::string base64_decode(std::string_view text);
// RFC 3986 percent-encoding of everything but the unreserved characters (A-Z a-z 0-9 - . _ ~),
// for a value inside a URL's path segment or query, or a form field.
std::string percent_encode(std::string_view text);

}  // namespace slmhub
