#include "webhook.hpp"

#include <curl/curl.h>

#include <memory>
#include <stdexcept>

#include "slmhub/digest.hpp"
#include "slmhub/events.hpp"

namespace slmhub::alerts {
namespace {

std::size_t keep(char* data, std::size_t size, std::size_t n, void* out) {
  auto* text = static_cast<std::string*>(out);
  // A receiver's answer only goes into the delivery log: the first KiB is enough.
  if (text->size() < 1024) text->append(data, std::min(size * n, 1024 - text->size()));
  return size * n;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> signature_headers(const std::string& secret,
                                                                   long long timestamp,
                                                                   const std::string& body) {
  if (secret.empty()) return {};
  const std::string ts = std::to_string(timestamp);
  return {{"X-Slmhub-Timestamp", ts},
          {"X-Slmhub-Signature", "sha256=" + hex_encode(hmac_sha256(secret, ts + "." + body))}};
}

void post_webhook(const WebhookSettings& settings, const std::string& url,
                  const std::vector<std::pair<std::string, std::string>>& headers,
                  const std::string& body) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw std::runtime_error("webhook " + url + ": libcurl could not start");
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Content-Type: application/json");
  list = curl_slist_append(list, "Expect:");
  for (const auto& [name, value] : headers)
    list = curl_slist_append(list, (name + ": " + value).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> owned(list, curl_slist_free_all);
  std::string answer;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, settings.timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, settings.timeout_ms);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "slmhub-tech-alerts");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    throw std::runtime_error("webhook " + url + ": " + curl_easy_strerror(rc));
  }
  long status = 0;  // NOLINT(google-runtime-int): libcurl's type
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return;
  const std::string what = "webhook " + url + " answered " + std::to_string(status) +
                           (answer.empty() ? "" : ": " + answer.substr(0, 200));
  if (status >= 400 && status < 500 && status != 408 && status != 429) throw PermanentFailure(what);
  throw std::runtime_error(what);
}

}  // namespace slmhub::alerts
