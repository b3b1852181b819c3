// A simulated ServiceNow instance for tests and benchmarks of the ServiceNow connector
// (../shared/SERVICENOW.md, DESIGN.md §6): servicenow_sim.py on 127.0.0.1 and a free port,
// serving the Table API, the Import Set API and OAuth, over HTTPS with a freshly generated
// self-signed certificate (and a client certificate for mutual TLS) when asked. Tests steer
// it through its control API (control()): records edited "by a ServiceNow user", bulk data,
// faults, rate limits, ACLs, the webhook hook, the request log. The server stops and its temp
// directory is removed when the object dies. Tests fail (never skip) when it cannot start.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "certificate.hpp"
#include "slmhub/json.hpp"

namespace slmhub::test {

class ScriptServer;

struct ServiceNowSimOptions {
  bool tls = false;  // HTTPS; the control API then has a plain-HTTP port of its own
  // The name the server certificate is issued for (see make_self_signed_certificate).
  std::string certificate_name = "127.0.0.1";
  // Mutual TLS (implies tls): the server requires a client certificate, and
  // client_certificate() / client_key() are one it accepts.
  bool require_client_certificate = false;
  // With mutual TLS: a request with the certificate and no Authorization header runs as this
  // user; "" = credentials are still needed.
  std::string certificate_user;
  // Basic-auth users, name -> password; empty = admin:admin and slmhub:slmhub.
  std::map<std::string, std::string> users;
  // OAuth clients for /oauth_token.do, client id -> secret; empty = none (OAuth refused).
  std::map<std::string, std::string> oauth_clients;
  int token_ttl_seconds = 1799;  // access-token lifetime ("expires_in")
  int latency_ms = 0;            // added to every Table API and Import Set API request
  // Repeatable sys_ids, and repeatable webhook duplicates and reordering.
  std::optional<std::int64_t> seed;
  int acl_every_nth = 0;  // an ACL hides every Nth record created in a table; 0 = no ACL
};

class ServiceNowSim {
 public:
  // Starts the server and waits until it listens; throws std::runtime_error with the server's
  // output when it cannot.
  explicit ServiceNowSim(const ServiceNowSimOptions& options = {});
  ~ServiceNowSim();
  ServiceNowSim(const ServiceNowSim&) = delete;
  ServiceNowSim& operator=(const ServiceNowSim&) = delete;

  int port() const;
  int control_port() const { return control_port_; }  // == port() without TLS
  // "http://127.0.0.1:PORT" or "https://<certificate_name>:PORT": the instance URL.
  std::string base_url() const;
  // The server's certificate, to be trusted as the CA; "" without TLS.
  std::string ca_file() const { return certificate_.certificate.string(); }
  // The client's certificate and key (PEM files) with mutual TLS; "" otherwise.
  std::string client_certificate() const { return client_.certificate.string(); }
  std::string client_key() const { return client_.key.string(); }

  // One request to the control API: `path` under /sim/ ("/sim/faults" or just "faults"),
  // `body` sent as JSON unless null. Returns the parsed answer (null for 204); throws
  // std::runtime_error naming the request, status and answer for a status >= 400.
  Json control(const std::string& method, const std::string& path,
               const Json& body = nullptr) const;

  // Shorthands for the control API.
  void reset() const { control("POST", "/sim/reset"); }
  // Inserts / updates a record as ServiceNow user `user` (fires the webhook hook); returns the
  // record as stored (every field, raw values).
  Json create(const std::string& table, const Json& fields,
              const std::string& user = "admin") const;
  Json update(const std::string& table, const std::string& sys_id, const Json& fields,
              const std::string& user = "admin") const;
  Json records(const std::string& table) const;  // every record, raw, ACLs ignored
  void add_fault(const Json& fault) const { control("POST", "/sim/faults", fault); }
  // The webhook deliveries made so far, once there are `count` or `timeout` has passed.
  Json deliveries(std::size_t count = 0,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // The API requests logged after request number `since` (0 = all).
  Json requests(std::int64_t since = 0) const;

  // What the server wrote to stderr, for failure messages.
  std::string log() const;

 private:
  std::filesystem::path dir_;
  Certificate certificate_;
  Certificate client_;
  std::string host_;
  std::unique_ptr<ScriptServer> server_;
  int control_port_ = 0;
};

}  // namespace slmhub::test
