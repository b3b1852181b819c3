// The webhook's checks before anything is stored: each credential kind, the timestamp window,
// the field mapping, and the exact status of each refusal.
#include "webhook.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "signature.hpp"
#include "slmhub/digest.hpp"
#include "slmhub/errors.hpp"

namespace slmhub::servicenow {
namespace {

const Instant kNow = from_epoch(1'790'000'000);

WebhookSettings hmac_settings() {
  WebhookSettings s;
  s.auth = WebhookSettings::Auth::hmac;
  s.hmac_secret = "k3y";
  s.tables = {"incident", "change_request"};
  return s;
}

Request request(std::string body, std::map<std::string, std::string> headers) {
  Request r;
  r.method = "POST";
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Problem& p) {
    return p.status();
  }
  return 0;
}

TEST(Signature, MatchesTheRfc4231TestVector) {
  // RFC 4231 test case 2, the digest in base64 as GlideCertificateEncryption gives it.
  EXPECT_EQ(hmac_sha256_base64("Jefe", "what do ya want for nothing?"),
            base64_encode(std::string(
                "\x5b\xdc\xc1\x46\xbf\x60\x75\x4e\x6a\x04\x24\x26\x08\x95\x75\xc7\x5a\x00\x3f\x08"
                "\x9d\x27\x39\x83\x9d\xec\x58\xb9\x64\xec\x38\x43",
                32)));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(WebhookAuth, HmacOverTheBodyOrTheTimestampedBody) {
  auto s = hmac_settings();
  const std::string body = R"({"table":"incident","sys_id":"a"})";
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(
                  s, request(body, {{"x-sn-signature", hmac_sha256_base64("k3y", body)}}), kNow);
            }),
            0);
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(
                  s, request(body, {{"x-sn-signature", hmac_sha256_base64("other", body)}}), kNow);
            }),
            401);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, request(body, {}), kNow); }), 401);
  // A body changed after signing.
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(
                  s, request(body + " ", {{"x-sn-signature", hmac_sha256_base64("k3y", body)}}),
                  kNow);
            }),
            401);

  s.timestamp_header = "x-sn-timestamp";
  const auto signed_at = [&](std::int64_t at) {
    const std::string ts = std::to_string(at);
    return request(body, {{"x-sn-timestamp", ts},
                          {"x-sn-signature", hmac_sha256_base64("k3y", ts + "." + body)}});
  };
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, signed_at(to_epoch(kNow) - 300), kNow); }), 0);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, signed_at(to_epoch(kNow) - 301), kNow); }),
            401);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, signed_at(to_epoch(kNow) + 301), kNow); }),
            401);
  // Timestamps at the ends of the range do not wrap around into the window.
  for (const std::int64_t far :
       {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
        to_epoch(kNow) - std::numeric_limits<std::int64_t>::max()}) {
    EXPECT_EQ(status_of([&] { authenticate_webhook(s, signed_at(far), kNow); }), 401) << far;
  }
  // The timestamp is signed: moving it forward breaks the signature.
  auto replayed = signed_at(to_epoch(kNow) - 3600);
  replayed.headers["x-sn-timestamp"] = std::to_string(to_epoch(kNow));
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, replayed, kNow); }), 401);
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(s, request(body, {{"x-sn-timestamp", "yesterday"}}), kNow);
            }),
            401);
}

TEST(WebhookAuth, BasicAndToken) {
  WebhookSettings s;
  s.auth = WebhookSettings::Auth::basic;
  s.username = "sn";
  s.password = "pw";
  const auto basic = [](const std::string& pair) {
    return request("{}", {{"authorization", "Basic " + base64_encode(pair)}});
  };
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, basic("sn:pw"), kNow); }), 0);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, basic("sn:px"), kNow); }), 401);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, basic("sx:pw"), kNow); }), 401);
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(s, request("{}", {{"authorization", "Basic %%%"}}), kNow);
            }),
            401);

  s.auth = WebhookSettings::Auth::token;
  s.token = "t0ken";
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(s, request("{}", {{"authorization", "Bearer t0ken"}}), kNow);
            }),
            0);
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(s, request("{}", {{"authorization", "Bearer t0kem"}}), kNow);
            }),
            401);
  s.token_header = "x-sn-token";
  EXPECT_EQ(status_of([&] {
              authenticate_webhook(s, request("{}", {{"x-sn-token", "t0ken"}}), kNow);
            }),
            0);
  EXPECT_EQ(status_of([&] { authenticate_webhook(s, request("{}", {}), kNow); }), 401);
}

TEST(WebhookBody, MapsTheConfiguredFields) {
  auto s = hmac_settings();
  s.table_field = "u_table";
  const auto change = parse_webhook(
      s, R"({"u_table":"incident","sys_id":"abc","sys_mod_count":"7","sys_updated_by":"jdoe",)"
         R"("sys_updated_on":"2026-11-30 10:00:00","state":"2","extra":"kept"})");
  EXPECT_EQ(change.table, "incident");
  EXPECT_EQ(change.sys_id, "abc");
  EXPECT_EQ(change.mod_count, 7);
  EXPECT_EQ(change.updated_by, "jdoe");
  EXPECT_EQ(change.updated_on, "2026-11-30 10:00:00");
  // Numbers and reference objects are taken as their text; no sys_mod_count is -1.
  const auto loose = parse_webhook(
      s, R"({"u_table":"incident","sys_id":{"link":"x","value":"abc"},"sys_mod_count":3})");
  EXPECT_EQ(loose.sys_id, "abc");
  EXPECT_EQ(loose.mod_count, 3);
  EXPECT_EQ(parse_webhook(s, R"({"u_table":"incident","sys_id":"abc"})").mod_count, -1);
}

// A rule written for one table posts to /api/v1/webhooks/servicenow/{table}: the path names
// the table, and a body that names another is refused.
TEST(WebhookBody, TheTableMayComeFromThePath) {
  const auto s = hmac_settings();
  EXPECT_EQ(parse_webhook(s, R"({"sys_id":"abc","number":"INC0010001"})", "incident").table,
            "incident");
  EXPECT_EQ(parse_webhook(s, R"({"table":"incident","sys_id":"abc"})", "incident").table,
            "incident");
  EXPECT_EQ(status_of([&] {
              parse_webhook(s, R"({"table":"change_request","sys_id":"abc"})", "incident");
            }),
            422);
  EXPECT_EQ(status_of([&] { parse_webhook(s, R"({"sys_id":"abc"})", "sys_user"); }), 422);
  try {
    parse_webhook(s, R"({"sys_id":"abc"})");
    FAIL() << "a body without its table was taken";
  } catch (const Problem& p) {
    EXPECT_NE(p.detail().find("posts to /api/v1/webhooks/servicenow/{table}"), std::string::npos)
        << p.detail();
  }
}

TEST(WebhookBody, EachRefusalHasItsStatus) {
  auto s = hmac_settings();
  s.max_body_bytes = 100;
  EXPECT_EQ(status_of([&] { parse_webhook(s, "{"); }), 400);
  EXPECT_EQ(status_of([&] { parse_webhook(s, "[]"); }), 400);
  EXPECT_EQ(status_of([&] { parse_webhook(s, R"({"sys_id":"a"})"); }), 422);
  EXPECT_EQ(status_of([&] { parse_webhook(s, R"({"table":"sys_user","sys_id":"a"})"); }), 422);
  EXPECT_EQ(status_of([&] { parse_webhook(s, R"({"table":"incident"})"); }), 422);
  // A sys_id goes into the record's URL: only what a sys_id can be.
  for (const std::string id : {".", "..", "a/b", "a b", "a?b", "%2e"}) {
    EXPECT_EQ(
        status_of([&] { parse_webhook(s, R"({"table":"incident","sys_id":")" + id + R"("})"); }),
        422)
        << id;
  }
  EXPECT_EQ(status_of([&] {
              parse_webhook(s, R"({"table":"incident","sys_id":"a","sys_mod_count":"x"})");
            }),
            422);
  EXPECT_EQ(status_of([&] { parse_webhook(s, R"({"table":"incident","sys_id":["a"]})"); }), 422);
  // Malformed anywhere, not only in the fields read: a raw control character, a lone
  // surrogate, a number beyond double's range, text after the object.
  for (const std::string bad : {"{\"table\":\"incident\",\"sys_id\":\"a\",\"x\":\"\x01\"}",
                                R"({"table":"incident","sys_id":"a","x":"\ud800"})",
                                R"({"table":"incident","sys_id":"a","x":1e400})",
                                R"({"table":"incident","sys_id":"a"} {})"}) {
    EXPECT_EQ(status_of([&] { parse_webhook(s, bad); }), 400) << bad;
  }
  // A mapped field sent twice has no one meaning.
  EXPECT_EQ(
      status_of([&] { parse_webhook(s, R"({"table":"incident","sys_id":"a","sys_id":"b"})"); }),
      422);
  EXPECT_EQ(status_of([&] {
              parse_webhook(s, "{\"table\":\"incident\",\"x\":\"" + std::string(200, 'y') + "\"}");
            }),
            413);
  try {
    parse_webhook(s, R"({"table":"sys_user","sys_id":"a"})");
  } catch (const Problem& p) {
    EXPECT_NE(p.detail().find("'sys_user' is not synced (synced: change_request, incident)"),
              std::string::npos)
        << p.detail();
  }
}

}  // namespace
}  // namespace slmhub::servicenow
