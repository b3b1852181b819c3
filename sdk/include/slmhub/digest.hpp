// Fingerprints, signatures and transfer encodings plugins need for what they store and send:
// SHA-256 of attachments and secrets, HMAC-SHA256 of webhooks, base64 for attachment
// content in JSON bodies. Implemented with
// OpenSSL inside the SDK, so no OpenSSL type reaches a plugin.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace slmhub {

// Lower-case hex SHA-256 of `data` (64 characters).
std::string sha256_hex(std::string_view data);
// SHA-256 of bytes that arrive in pieces (an attachment decoded as it is stored): update()
// with each piece in order, then hex() gives what sha256_hex() of the whole would.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view piece);
  // Ends the digest: update() after hex() throws std::logic_error.
  std::string hex();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
  bool done_ = false;
};
// HMAC-SHA256 of `message` under `key`: the 32 raw bytes (hex_encode or base64_encode them).
std::string hmac_sha256(std::string_view key, std::string_view message);
// Lower-case hex of raw bytes.
std::string hex_encode(std::string_view bytes);
// True when `a` and `b` are equal; the time taken depends on their lengths only, so a caller
// cannot learn a secret a byte at a time from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

// Standard base64 (RFC 4648 §4) with padding.
std::string base64_encode(std::string_view data);
// Decodes standard base64; whitespace (line breaks of MIME bodies) is skipped. Throws
// std::invalid_argument naming the offset of the first character that is not base64 or the
// wrong length.
std::string base64_decode(std::string_view text);
// Text made safe for HTML element content and quoted attribute values: & < > " ' escaped
// (' as &#39;, which HTML 4 mail clients know, unlike &apos;).
std::string escape_html(std::string_view text);
// RFC 3986 percent-encoding of everything but the unreserved characters (A-Z a-z 0-9 - . _ ~),
// for a value inside a URL's path segment or query, or a form field.
std::string percent_encode(std::string_view text);

}  // namespace slmhub
