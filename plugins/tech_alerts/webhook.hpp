// Outbound webhooks of Tech Alerts: one signed JSON POST per delivery, with the verdict the
// outbox acts on (delivered, try again later, or never).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace slmhub::alerts {

struct WebhookSettings {
  std::string secret;       // HMAC-SHA256 key; "" sends no signature
  std::string ca_file;      // trusted besides the system's CAs; verification is never off
  long timeout_ms = 10000;  // NOLINT(google-runtime-int): libcurl's type
};

// The signature headers of `body` sent at `timestamp` (Unix seconds): X-Slmhub-Timestamp and
// X-Slmhub-Signature "sha256=" + hex HMAC-SHA256(secret, "<timestamp>.<body>"), so a receiver
// can refuse replays of old deliveries. Empty without a secret.
std::vector<std::pair<std::string, std::string>> signature_headers(const std::string& secret,
                                                                   long long timestamp,
                                                                   const std::string& body);

// POSTs `body` (application/json) to `url` (http or https only, no redirects followed, TLS 1.2+
// with the peer verified). Returns normally on 2xx. Throws slmhub::PermanentFailure on a 4xx
// other than 408 and 429 (the receiver refuses this request; sending it again cannot help) and
// std::runtime_error on everything else (5xx, 408, 429, time-outs, refused connections, TLS
// failures): the outbox retries those with back-off. The message names the URL and the status
// or error.
void post_webhook(const WebhookSettings& settings, const std::string& url,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  const std::string& body);

}  // namespace slmhub::alerts
