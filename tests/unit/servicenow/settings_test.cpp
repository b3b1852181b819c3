// Settings and arguments that could never work are refused before anything is sent, with a
// message that says what is wrong and what is allowed.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "client.hpp"
#include "error_of.hpp"

namespace slmhub::servicenow {
namespace {

using test::error_of;

ClientSettings valid() {
  ClientSettings settings;
  settings.base_url = "https://acme.service-now.com/";
  settings.username = "svc_slmhub";
  settings.password = "secret";
  return settings;
}

std::string refusal(const std::function<void(ClientSettings&)>& change) {
  ClientSettings settings = valid();
  change(settings);
  return error_of<std::invalid_argument>([&] { Client client(settings); });
}

TEST(ClientSettings, RefusesWhatCouldNeverWork) {
  EXPECT_NO_THROW(Client{valid()});
  EXPECT_EQ(refusal([](auto& s) { s.base_url = ""; }),
            "ServiceNow settings: base_url '' must be https://host[:port] (the instance, without "
            "a path)");
  EXPECT_EQ(refusal([](auto& s) { s.base_url = "https://acme.service-now.com/api/now"; }),
            "ServiceNow settings: base_url 'https://acme.service-now.com/api/now' must be "
            "https://host[:port] (the instance, without a path)");
  EXPECT_EQ(refusal([](auto& s) { s.base_url = "http://acme.service-now.com"; }),
            "ServiceNow settings: base_url 'http://acme.service-now.com': http:// is accepted "
            "for a simulator on 127.0.0.1 or localhost only; use https://");
  EXPECT_EQ(refusal([](auto& s) { s.password = ""; }),
            "ServiceNow settings: the password must be set, without control characters");
  EXPECT_EQ(refusal([](auto& s) { s.username = "a:b"; }),
            "ServiceNow settings: username 'a:b' must be set, without control characters (or "
            "':' for basic auth)");
  EXPECT_EQ(refusal([](auto& s) {
              s.auth = ClientSettings::Auth::oauth;
              s.client_secret = "x";
            }),
            "ServiceNow settings: OAuth needs client_id and client_secret");
  EXPECT_EQ(refusal([](auto& s) { s.ca_file = "/nonexistent/ca.pem"; }),
            "ServiceNow settings: the CA file '/nonexistent/ca.pem' cannot be read");
  EXPECT_EQ(refusal([](auto& s) { s.client_certificate = "/etc/hostname"; }),
            "ServiceNow settings: mutual TLS needs both client_certificate and client_key");
  EXPECT_EQ(refusal([](auto& s) { s.max_attempts = 0; }),
            "ServiceNow settings: max_attempts must be at least 1");
  EXPECT_EQ(refusal([](auto& s) { s.backoff_cap = std::chrono::milliseconds(10); }),
            "ServiceNow settings: backoff_base must be positive and backoff_cap at least "
            "backoff_base");
  EXPECT_EQ(refusal([](auto& s) { s.max_concurrency = 0; }),
            "ServiceNow settings: max_concurrency must be at least 1");
  EXPECT_EQ(refusal([](auto& s) { s.requests_per_second = -1; }),
            "ServiceNow settings: requests_per_second must be 0 (unlimited) or more");
  EXPECT_EQ(refusal([](auto& s) { s.page_size = 10001; }),
            "ServiceNow settings: page_size must be 1 to 10000");
  EXPECT_EQ(refusal([](auto& s) { s.request_timeout = std::chrono::milliseconds(0); }),
            "ServiceNow settings: connect_timeout and request_timeout must be positive");
  // A local simulator may be plain HTTP.
  for (const char* local : {"http://127.0.0.1:8089", "http://localhost:1/", "http://[::1]:2"}) {
    ClientSettings settings = valid();
    settings.base_url = local;
    EXPECT_NO_THROW(Client{settings}) << local;
  }
}

// Names go into URLs and queries as they are, so they are checked first; nothing is sent
// (the instance does not exist).
TEST(ClientArguments, RefusesNamesAndKeysThatCouldWidenOrRedirect) {
  ClientSettings settings = valid();
  settings.base_url = "https://127.0.0.1:1";
  Client client(settings);
  EXPECT_EQ(error_of<std::invalid_argument>([&] { client.get("incident/../sys_user", "x"); }),
            "ServiceNow: the table name 'incident/../sys_user' must be letters, digits and '_'");
  EXPECT_EQ(error_of<std::invalid_argument>([&] {
              client.list("incident", "", {"number", "a,b"}, [](auto&&) {});
            }),
            "ServiceNow: the field name 'a,b' must be letters, digits, '_' and '.'");
  const auto create = [&](const std::string& key) {
    return error_of<std::invalid_argument>([&] {
      client.create_unique("incident", {{"correlation_id", key}, {"short_description", "x"}},
                           "correlation_id");
    });
  };
  EXPECT_EQ(create(""),
            "ServiceNow create in incident: the key field 'correlation_id' must have a value");
  EXPECT_EQ(create("SLM-1^NQactive=true"),
            "ServiceNow create in incident: the key 'SLM-1^NQactive=true' cannot be looked up "
            "exactly (no '^', control characters, leading or trailing spaces or "
            "\"javascript:\")");
  // Evaluated by the instance; a line break; a space the lookup might not match.
  for (const std::string key : {"javascript:gs.getUserID()", "SLM-1\n", " SLM-1"}) {
    EXPECT_TRUE(create(key).starts_with("ServiceNow create in incident: the key '")) << key;
  }
  EXPECT_EQ(error_of<std::invalid_argument>([&] {
              client.create_unique("incident", {{"short_description", "x"}}, "number");
            }),
            "ServiceNow create in incident: the key field 'number' must have a value");
  EXPECT_EQ(
      error_of<std::invalid_argument>([&] {
        client.sweep("incident", {}, "active=true^NQactive=false", {},
                     [](auto&&, auto&) { return true; });
      }),
      "ServiceNow sweep of incident: the extra query 'active=true^NQactive=false' must be terms "
      "joined by ^ or ^OR, without ^NQ or ORDERBY");
  EXPECT_THROW(
      client.sweep("incident", {}, "ORDERBYnumber", {}, [](auto&&, auto&) { return true; }),
      std::invalid_argument);
  EXPECT_THROW(client.sweep("incident", {"2026-11-02T09:00:00Z", ""}, "", {},
                            [](auto&&, auto&) { return true; }),
               std::invalid_argument);
  EXPECT_THROW(client.sweep("incident", {"2026-11-02 09:00:00", "a^NQb"}, "", {},
                            [](auto&&, auto&) { return true; }),
               std::invalid_argument);
  EXPECT_THROW(
      client.sweep("incident", {}, "", {"number", "sys_id"}, [](auto&&, auto&) { return true; }),
      std::invalid_argument);
  EXPECT_EQ(client.stats().requests, 0);
}

}  // namespace
}  // namespace slmhub::servicenow
