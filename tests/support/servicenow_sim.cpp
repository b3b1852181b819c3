#include "servicenow_sim.hpp"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "process.hpp"

namespace slmhub::test {

namespace fs = std::filesystem;

ServiceNowSim::ServiceNowSim(const ServiceNowSimOptions& options) {
  std::string pattern = (fs::temp_directory_path() / "slmhub-servicenow-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("ServiceNowSim: cannot create a temp dir: " +
                             std::generic_category().message(errno));
  }
  dir_ = pattern;
  try {
    std::vector<std::string> argv = {
        std::string(SLMHUB_SOURCE_DIR) + "/tests/support/servicenow_sim.py", "--token-ttl",
        std::to_string(options.token_ttl_seconds), "--latency-ms",
        std::to_string(options.latency_ms)};
    const bool tls = options.tls || options.require_client_certificate;
    host_ = tls ? options.certificate_name : "127.0.0.1";
    if (tls) {
      certificate_ = make_self_signed_certificate(dir_, options.certificate_name);
      argv.insert(argv.end(), {"--tls-cert", certificate_.certificate.string(), "--tls-key",
                               certificate_.key.string()});
    }
    if (options.require_client_certificate) {
      client_ = make_self_signed_certificate(dir_, "slmhub-client");
      argv.insert(argv.end(), {"--client-ca", client_.certificate.string()});
      if (!options.certificate_user.empty()) {
        argv.insert(argv.end(), {"--cert-user", options.certificate_user});
      }
    }
    for (const auto& [name, password] : options.users) {
      argv.insert(argv.end(), {"--user", name + ":" + password});
    }
    for (const auto& [id, secret] : options.oauth_clients) {
      argv.insert(argv.end(), {"--oauth-client", id + ":" + secret});
    }
    if (options.seed) argv.insert(argv.end(), {"--seed", std::to_string(*options.seed)});
    if (options.acl_every_nth > 0) {
      argv.insert(argv.end(), {"--acl-every-nth", std::to_string(options.acl_every_nth)});
    }
    server_ = std::make_unique<ScriptServer>(argv, dir_, "ServiceNowSim: servicenow_sim.py");
    const std::string control = server_->announced("control");
    control_port_ = control.empty() ? server_->port() : std::stoi(control);
  } catch (...) {
    server_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

ServiceNowSim::~ServiceNowSim() {
  server_.reset();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

int ServiceNowSim::port() const { return server_->port(); }

std::string ServiceNowSim::base_url() const {
  return (certificate_.certificate.empty() ? "http://" : "https://") + host_ + ":" +
         std::to_string(port());
}

Json ServiceNowSim::control(const std::string& method, const std::string& path,
                            const Json& body) const {
  const std::string target = path.rfind("/sim", 0) == 0
                                 ? path
                                 : "/sim/" + (path.rfind('/', 0) == 0 ? path.substr(1) : path);
  Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(control_port_));
  // Bulk generation of 100,000 records and waits for webhook deliveries take seconds.
  session.setTimeout(Poco::Timespan(120, 0));
  Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
  const std::string text = body.is_null() ? std::string() : body.dump();
  if (!text.empty()) request.setContentType("application/json");
  request.setContentLength64(static_cast<Poco::Int64>(text.size()));
  session.sendRequest(request) << text;
  Poco::Net::HTTPResponse response;
  std::string answer;
  Poco::StreamCopier::copyToString(session.receiveResponse(response), answer);
  const int status = static_cast<int>(response.getStatus());
  if (status >= 400) {
    throw std::runtime_error("ServiceNowSim: " + method + " " + target + " answered " +
                             std::to_string(status) + ": " + answer);
  }
  return answer.empty() ? Json() : Json::parse(answer);
}

Json ServiceNowSim::create(const std::string& table, const Json& fields,
                           const std::string& user) const {
  Json body = fields.is_null() ? Json::object() : fields;
  body["_user"] = user;
  return control("POST", "/sim/records/" + table, body).at("result");
}

Json ServiceNowSim::update(const std::string& table, const std::string& sys_id, const Json& fields,
                           const std::string& user) const {
  Json body = fields.is_null() ? Json::object() : fields;
  body["_user"] = user;
  return control("PATCH", "/sim/records/" + table + "/" + sys_id, body).at("result");
}

Json ServiceNowSim::records(const std::string& table) const {
  return control("GET", "/sim/records/" + table).at("result");
}

Json ServiceNowSim::deliveries(std::size_t count, std::chrono::milliseconds timeout) const {
  return control("GET", "/sim/webhook/deliveries?wait_count=" + std::to_string(count) +
                            "&timeout_ms=" + std::to_string(timeout.count()))
      .at("deliveries");
}

Json ServiceNowSim::requests(std::int64_t since) const {
  return control("GET", "/sim/requests?since=" + std::to_string(since)).at("requests");
}

std::string ServiceNowSim::log() const { return server_ ? server_->log() : std::string(); }

}  // namespace slmhub::test
