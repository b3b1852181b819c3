// Answers the simulator never gives, from a scripted instance on 127.0.0.1: a next link to
// another host (never followed, so the credentials and the query never leave the instance),
// a relative link, a link that loops, values that are not strings, a list answer without a
// result. Each is what a misconfigured proxy or a scripted REST API could send.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "client.hpp"
#include "error_of.hpp"

namespace slmhub::servicenow {
namespace {

using test::error_of;

// What the scripted instance answers: status, Link header ("" = none; "{port}" in it becomes
// the instance's own port), JSON body.
struct Answer {
  int status = 200;
  std::string link;
  std::string body;
};

// Answers the n-th request with answers[n] (the last one again after the end), and keeps the
// request targets.
class ScriptedInstance {
 public:
  explicit ScriptedInstance(std::vector<Answer> answers)
      : answers_(std::move(answers)),
        socket_(Poco::Net::SocketAddress("127.0.0.1", 0)),
        server_(new Factory(*this), socket_, new Poco::Net::HTTPServerParams) {
    server_.start();
  }
  ~ScriptedInstance() { server_.stopAll(true); }

  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(socket_.address().port());
  }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(ScriptedInstance& instance) : instance_(instance) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      Answer answer;
      {
        std::lock_guard lock(instance_.mutex_);
        const std::size_t n = instance_.targets_.size();
        instance_.targets_.push_back(request.getURI());
        answer = instance_.answers_.at(std::min(n, instance_.answers_.size() - 1));
      }
      response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
      if (const auto at = answer.link.find("{port}"); at != std::string::npos) {
        answer.link.replace(at, 6, std::to_string(instance_.socket_.address().port()));
      }
      if (!answer.link.empty()) response.set("Link", answer.link);
      response.setContentType("application/json;charset=UTF-8");
      response.setContentLength(static_cast<std::streamsize>(answer.body.size()));
      response.send() << answer.body;
    }

   private:
    ScriptedInstance& instance_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(ScriptedInstance& instance) : instance_(instance) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(instance_);
    }

   private:
    ScriptedInstance& instance_;
  };

  std::vector<Answer> answers_;
  Poco::Net::ServerSocket socket_;
  Poco::Net::HTTPServer server_;
  mutable std::mutex mutex_;
  std::vector<std::string> targets_;
};

ClientSettings settings_for(const ScriptedInstance& instance) {
  ClientSettings settings;
  settings.base_url = instance.base_url();
  settings.username = "slmhub";
  settings.password = "slmhub";
  settings.requests_per_second = 0;
  settings.sleep = [](std::chrono::milliseconds) {};
  return settings;
}

const std::string kOne = R"({"result":[{"sys_id":"a"}]})";

std::vector<std::string> listed(Client& client) {
  std::vector<std::string> ids;
  client.list("incident", "active=true", {}, [&](std::vector<Record>&& page) {
    for (const auto& record : page) ids.push_back(record.at("sys_id"));
  });
  return ids;
}

TEST(ServiceNowAnswers, ANextLinkToAnotherOriginIsNeverFollowed) {
  // Another host, another scheme on the same port, another port, another host's port.
  for (const std::string elsewhere : {"https://evil.example.com", "https://127.0.0.1:{port}",
                                      "http://127.0.0.1:1", "http://localhost.example:{port}"}) {
    const std::string path = "/api/now/table/incident?sysparm_offset=1";
    ScriptedInstance pointing({{200, "<" + elsewhere + path + ">;rel=\"next\"", kOne}});
    const std::string port = pointing.base_url().substr(pointing.base_url().rfind(':') + 1);
    std::string link = elsewhere + path;
    if (const auto at = link.find("{port}"); at != std::string::npos) link.replace(at, 6, port);
    Client client(settings_for(pointing));
    EXPECT_EQ(error_of<Error>([&] { listed(client); }),
              "ServiceNow " + pointing.base_url() +
                  "/api/now/table/incident: the next page's link '" + link + "' is not on " +
                  pointing.base_url() + "; it was not followed");
    EXPECT_EQ(pointing.targets().size(), 1u);
  }
}

TEST(ServiceNowAnswers, ARelativeNextLinkIsFollowedOnTheInstanceWithRawValues) {
  ScriptedInstance instance(
      {{200, "</api/now/table/incident?sysparm_offset=1&sysparm_display_value=true>;rel=\"next\"",
        kOne},
       {200, "", R"({"result":[{"sys_id":"b"}]})"}});
  Client client(settings_for(instance));
  EXPECT_EQ(listed(client), (std::vector<std::string>{"a", "b"}));
  const auto targets = instance.targets();
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0],
            "/api/now/table/incident?sysparm_display_value=false&sysparm_exclude_reference_link="
            "true&sysparm_query=active%3Dtrue&sysparm_limit=1000");
  // Display values asked for by the link are not what the client reads.
  EXPECT_EQ(targets[1],
            "/api/now/table/incident?sysparm_offset=1&sysparm_display_value=false&"
            "sysparm_exclude_reference_link=true");
}

TEST(ServiceNowAnswers, ANextLinkBackToAPageAlreadyReadIsRefused) {
  // Page 2 links to page 1, which links to page 2.
  const std::string page1 = "/api/now/table/incident?sysparm_offset=0";
  const std::string page2 = "/api/now/table/incident?sysparm_offset=1";
  ScriptedInstance loop({{200, "<" + page2 + ">;rel=\"next\"", kOne},
                         {200, "<" + page1 + ">;rel=\"next\"", kOne},
                         {200, "<" + page2 + ">;rel=\"next\"", kOne}});
  Client client(settings_for(loop));
  EXPECT_EQ(error_of<Error>([&] { listed(client); }),
            "ServiceNow " + loop.base_url() + "/api/now/table/incident: the next page's link '" +
                page2 + "' names a page already fetched");
  EXPECT_EQ(loop.targets().size(), 3u);
}

TEST(ServiceNowAnswers, ValuesThatAreNotStringsBecomeStrings) {
  ScriptedInstance instance(
      {{200, "",
        R"({"result":{"sys_id":"a","count":7,"flag":true,"none":null,)"
        R"("caller_id":{"link":"https://x/api/now/table/sys_user/u1","value":"u1"},)"
        R"("state":{"display_value":"In Progress","value":"2"},)"
        R"("ratio":1.5,"empty":""}})"}});
  Client client(settings_for(instance));
  EXPECT_EQ(client.get("incident", "a"), (Record{{"sys_id", "a"},
                                                 {"count", "7"},
                                                 {"flag", "true"},
                                                 {"none", ""},
                                                 {"caller_id", "u1"},
                                                 {"state", "2"},
                                                 {"ratio", "1.5"},
                                                 {"empty", ""}}));
}

TEST(ServiceNowAnswers, AnswersThatAreNotTableApiAnswersAreErrors) {
  ScriptedInstance instance({{200, "", R"({"records":[]})"}});
  Client client(settings_for(instance));
  EXPECT_EQ(error_of<Error>([&] { listed(client); }),
            "ServiceNow " + instance.base_url() +
                "/api/now/table/incident: a list answer without a \"result\" array");
  // Basic auth refused: not retried (the password will not get better).
  ScriptedInstance refusing(
      {{401, "",
        R"({"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"})"}});
  Client refused(settings_for(refusing));
  EXPECT_EQ(error_of<Error>([&] { refused.get("incident", "a"); }),
            "ServiceNow " + refusing.base_url() +
                "/api/now/table/incident/a: 401 User Not Authenticated (Required to provide Auth "
                "information) after 1 attempt");
  EXPECT_EQ(refusing.targets().size(), 1u);
}

}  // namespace
}  // namespace slmhub::servicenow
