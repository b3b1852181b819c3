// Three instances on one PostgreSQL database under a mixed load — Tech Alerts over HTTP,
// ServiceNow webhooks, mail over LMTP, jobs every minute — while one instance is killed
// with SIGKILL and another is paused (SIGSTOP) and resumed, as a load balancer's pool sees
// it when a machine dies or freezes. Afterwards every acknowledged input was applied once,
// every job slot ran to the end once, and the outbox delivered every message to the
// recording SMTP server; a message arrives a second time only if an instance was sending it
// when it was killed or paused (at most one per sending lane and fault, with the same
// Message-ID).
//
// One run is part of `make test`; `make test-cluster` runs it five times in a row.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "mime.hpp"
#include "postgres_cluster.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "servicenow_sim.hpp"
#include "signature.hpp"
#include "slmhub/json.hpp"
#include "smtp_recorder.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

using namespace std::chrono_literals;

// The HMAC key's bytes, and the secret as configured on both sides: its base64, as
// ServiceNow's generateMac takes a key.
constexpr const char* kKey = "webhook-secret-for-failover";
constexpr const char* kSecret = "d2ViaG9vay1zZWNyZXQtZm9yLWZhaWxvdmVy";
constexpr int kInstances = 3;
constexpr int kOutboxLanes = 2;  // outbox.concurrency: what a fault may repeat, at most
constexpr int kFaults = 2;       // one instance killed, another paused

std::int64_t epoch_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the load threads got an acknowledgement for.
struct Acknowledged {
  std::mutex mutex;
  std::set<std::string> alerts;     // titles answered 201
  std::set<std::string> mails;      // Message-IDs answered 250 over LMTP
  std::set<std::string> incidents;  // incident numbers whose webhook was answered 202
  void add(std::set<std::string>& to, const std::string& what) {
    std::lock_guard lock(mutex);
    to.insert(what);
  }
};

class Failover : public testing::Test {
 protected:
  void SetUp() override {
    static int databases = 0;
    db_url_ = shared_cluster().create_database("failover_" + std::to_string(getpid()) + "_" +
                                               std::to_string(++databases));
    for (int i = 0; i < kInstances; ++i) {
      lmtp_[i] = free_port();
      servers_[i] = std::make_unique<ServerProcess>(dirs_[i].path(), env(i));
    }
  }

  std::map<std::string, std::string> env(int i) {
    const std::string smtp = std::to_string(smtp_.port());
    return {
        {"SLMHUB_DB_URL", db_url_},
        {"SLMHUB_INSTANCE_ID", "node" + std::to_string(i + 1)},
        // Faults are noticed within seconds, not the production half minute.
        {"SLMHUB_EVENTS_POLL_MS", "50"},
        {"SLMHUB_EVENTS_LEASE_SECONDS", "3"},
        {"SLMHUB_EVENTS_RETRY_MAX_MS", "2000"},
        {"SLMHUB_JOBS_TICK_MS", "200"},
        {"SLMHUB_JOBS_LEASE_SECONDS", "3"},
        {"SLMHUB_OUTBOX_CLAIM_TIMEOUT_SECONDS", "3"},
        {"SLMHUB_OUTBOX_CONCURRENCY", std::to_string(kOutboxLanes)},
        {"SLMHUB_OUTBOX_INITIAL_BACKOFF_SECONDS", "1"},
        {"SLMHUB_OUTBOX_MAX_BACKOFF_SECONDS", "1"},
        {"SLMHUB_DEADLINES_WATCH_SCHEDULE", "* * * * *"},
        {"SLMHUB_TICKETS_RESPONSE_WATCH_SCHEDULE", "* * * * *"},
        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST", "127.0.0.1"},
        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_PORT", smtp},
        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS", "none"},
        {"SLMHUB_PLUGINS_TECH_ALERTS_SMTP_FROM", "alerts@example.org"},
        {"SLMHUB_PLUGINS_TECH_ALERTS_LISTS_PROBLEMS", "problems@example.org"},
        {"SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES", "db-requests:DBR:db-requests@example.org"},
        {"SLMHUB_PLUGINS_EMAIL_INTAKE_LMTP_LISTEN", "127.0.0.1:" + std::to_string(lmtp_[i])},
        {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_HOST", "127.0.0.1"},
        {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_PORT", smtp},
        {"SLMHUB_PLUGINS_EMAIL_INTAKE_SMTP_TLS", "none"},
        {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_URL", sim_.base_url()},
        {"SLMHUB_PLUGINS_SERVICENOW_INSTANCE_USERNAME", "slmhub"},
        {"SLMHUB_SECRET_SERVICENOW_PASSWORD", "slmhub"},
        {"SLMHUB_SECRET_SERVICENOW_WEBHOOK_SECRET", kSecret},
        {"SLMHUB_PLUGINS_SERVICENOW_WEBHOOK_TIMESTAMP_HEADER", "X-SN-Timestamp"},
        {"SLMHUB_PLUGINS_SERVICENOW_SWEEP_SCHEDULE", "0 0 1 1 *"},
        {"SLMHUB_LOG_LEVEL", "information"},
    };
  }

  // The first instance creates the schema and the admin token; the others share both.
  void start_all() {
    servers_[0]->start();
    token_ = servers_[0]->admin_token();
    for (int i = 1; i < kInstances; ++i) {
      std::filesystem::copy_file(dirs_[0].path() / "admin.token", dirs_[i].path() / "admin.token");
      servers_[i]->start();
    }
  }

  HttpResult post_alert(int i, const std::string& title) {
    return http(servers_[i]->port(), "POST", "/api/v1/alerts",
                Json({{"kind", "outage"},
                      {"title", title},
                      {"summary", "Oracle refuses connections"},
                      {"services", {"oracle-prod"}}})
                    .dump(),
                token_, {{"Content-Type", "application/json"}});
  }

  HttpResult post_webhook(int i, const Json& incident) {
    const std::string body = Json({{"table", "incident"},
                                   {"sys_id", incident["sys_id"]},
                                   {"sys_mod_count", incident["sys_mod_count"]},
                                   {"sys_updated_by", "jdoe"},
                                   {"number", incident["number"]}})
                                 .dump();
    const std::string ts = std::to_string(epoch_now());
    return http(servers_[i]->port(), "POST", "/api/v1/webhooks/servicenow", body, "",
                {{"Content-Type", "application/json"},
                 {"X-SN-Timestamp", ts},
                 {"X-SN-Signature", servicenow::hmac_sha256_base64(kKey, ts + "." + body)}});
  }

  bool send_lmtp(int i, int n) {
    const auto [status, out] =
        run_shell("swaks --protocol LMTP --server 127.0.0.1 --port " + std::to_string(lmtp_[i]) +
                  " --from requester" + std::to_string(n) + "@library.example.org" +
                  " --to db-requests@example.org --header 'Subject: failover " + std::to_string(n) +
                  "' --header 'Message-Id: <failover-" + std::to_string(n) +
                  "@library.example.org>' --body 'Please.' --timeout 30 2>&1");
    return status == 0;
  }

  std::string db_url_;
  SmtpRecorder smtp_;
  ServiceNowSim sim_;
  TempDir dirs_[kInstances];
  int lmtp_[kInstances] = {};
  std::unique_ptr<ServerProcess> servers_[kInstances];
  std::string token_;
};

TEST_F(Failover, KillingOneInstanceAndPausingAnotherLosesAndRepeatsNothing) {
  start_all();
  ASSERT_EQ(http(servers_[0]->port(), "POST", "/api/v1/import",
                 read_shared("vectors/example-2026-11.json"), token_,
                 {{"Content-Type", "application/json"}})
                .status,
            200);
  std::vector<Json> incidents;
  for (int n = 0; n < 60; ++n) {
    incidents.push_back(sim_.control(
        "POST", "/sim/records/incident",
        {{"short_description", "Failover " + std::to_string(n)}, {"_user", "jdoe"}})["result"]);
  }
  const std::int64_t load_started = epoch_now();
  auto pg = host::Database::open(db_url_);
  // Kill the instance that delivers to most subscribers (the first started, usually), so
  // the others must take its subscribers over; pause one of the other two.
  int victim = 0;
  {
    std::map<std::string, int> held;
    for (const auto& row : pg->query("SELECT holder FROM event_cursors WHERE holder IS NOT NULL"))
      ++held[row.text(0)];
    int most = -1;
    for (int i = 0; i < kInstances; ++i) {
      const int n = held["node" + std::to_string(i + 1)];
      if (n > most) most = n, victim = i;
    }
    ASSERT_GT(most, 0) << "no instance holds a subscriber";
  }
  const int paused = (victim + 1) % kInstances;
  const std::string victim_name = "node" + std::to_string(victim + 1);

  // The load: three clients, each sending to the instances in turn, as a load balancer
  // would, skipping only the instance known dead. Requests to the paused one wait for it.
  std::atomic<bool> dead[kInstances] = {false, false, false};
  std::atomic<bool> stop{false};
  Acknowledged ack;
  auto next_alive = [&](int& turn) {
    for (;;) {
      const int i = turn++ % kInstances;
      if (!dead[i]) return i;
    }
  };
  std::vector<std::thread> clients;
  clients.emplace_back([&] {
    for (int n = 0, turn = 0; !stop; ++n) {
      const std::string title = "Failover alert [" + std::to_string(n) + "]";
      try {
        if (post_alert(next_alive(turn), title).status == 201) ack.add(ack.alerts, title);
      } catch (const std::exception&) {  // the instance died under the request
      }
      std::this_thread::sleep_for(150ms);
    }
  });
  clients.emplace_back([&] {
    for (int n = 0, turn = 1; !stop && n < static_cast<int>(incidents.size()); ++n) {
      try {
        if (post_webhook(next_alive(turn), incidents[n]).status == 202) {
          ack.add(ack.incidents, incidents[n]["number"].get<std::string>());
        }
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(250ms);
    }
  });
  clients.emplace_back([&] {
    for (int n = 0, turn = 2; !stop; ++n) {
      if (send_lmtp(next_alive(turn), n)) {
        ack.add(ack.mails, "failover-" + std::to_string(n) + "@library.example.org");
      }
      std::this_thread::sleep_for(150ms);
    }
  });

  std::this_thread::sleep_for(6s);
  dead[victim] = true;
  servers_[victim]->kill_hard();
  std::this_thread::sleep_for(3s);
  servers_[paused]->signal(SIGSTOP);
  std::this_thread::sleep_for(8s);  // well past every lease and claim timeout
  servers_[paused]->signal(SIGCONT);
  std::this_thread::sleep_for(6s);
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_GT(ack.alerts.size(), 20u);
  ASSERT_GT(ack.mails.size(), 10u);
  ASSERT_GT(ack.incidents.size(), 20u);

  // Let at least one job slot fall after the faults, with two instances competing for it.
  const std::int64_t next_minute = (epoch_now() / 60 + 1) * 60;
  ASSERT_TRUE(eventually(
      [&] {
        return epoch_now() >= next_minute + 5 &&
               pg->query("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'").at(0).integer(0) == 0;
      },
      120s))
      << "outbox not drained:\n"
      << [&] {
           std::string out;
           for (const auto& row : pg->query("SELECT id, channel, state, attempts, last_error"
                                            " FROM outbox WHERE state <> 'sent'")) {
             out += std::to_string(row.integer(0)) + " " + row.text(1) + " " + row.text(2) + " " +
                    row.optional_text(4).value_or("") + "\n";
           }
           return out;
         }();

  // Every acknowledged input applied exactly once.
  std::map<std::string, int> tickets_by_subject, tickets_by_ref;
  ASSERT_TRUE(eventually(
      [&] {
        tickets_by_subject.clear();
        tickets_by_ref.clear();
        for (const auto& row : pg->query("SELECT subject, external_ref FROM tickets")) {
          ++tickets_by_subject[row.text(0)];
          if (auto ref = row.optional_text(1); ref && !ref->empty()) ++tickets_by_ref[*ref];
        }
        for (const auto& number : ack.incidents) {
          if (!tickets_by_ref.contains(number)) return false;
        }
        return true;
      },
      60s))
      << "a webhook acknowledged was never applied";
  for (const auto& number : ack.incidents) EXPECT_EQ(tickets_by_ref[number], 1) << number;
  for (const auto& id : ack.mails) {
    const std::string n = id.substr(9, id.find('@') - 9);
    EXPECT_EQ(tickets_by_subject["failover " + n], 1) << id;
  }
  std::map<std::string, int> alerts;
  for (const auto& row : pg->query("SELECT title FROM tech_alerts_alerts")) ++alerts[row.text(0)];
  for (const auto& title : ack.alerts) EXPECT_EQ(alerts[title], 1) << title;

  // Every message delivered; a second copy only of one in flight at a fault, same Message-ID.
  std::map<std::string, int> copies;  // by Message-ID
  std::set<std::string> alert_titles, replied_to;
  for (const auto& mail : smtp_.messages()) {
    const auto parsed = mail::parse_mail(mail.data);
    ++copies[parsed.header("message-id")];
    for (const auto& title : ack.alerts) {
      if (parsed.header("subject").find(title) != std::string::npos) alert_titles.insert(title);
    }
    replied_to.insert(parsed.header("in-reply-to"));
  }
  for (const auto& title : ack.alerts) EXPECT_TRUE(alert_titles.contains(title)) << title;
  for (const auto& id : ack.mails) {
    EXPECT_TRUE(replied_to.contains("<" + id + ">")) << "no auto-reply to " << id;
  }
  int repeated = 0;
  for (const auto& [id, n] : copies) repeated += n - 1;
  EXPECT_LE(repeated, kFaults * kOutboxLanes) << "more copies than one per lane and fault";
  const std::int64_t messages =
      pg->query("SELECT COUNT(*) FROM outbox WHERE channel <> 'servicenow'").at(0).integer(0);
  EXPECT_EQ(static_cast<std::int64_t>(copies.size()), messages);

  // Every minute slot since the load started ran to the end exactly once.
  for (const char* job : {"deadlines.watch", "tickets.response-watch"}) {
    std::map<std::int64_t, int> ok;
    for (const auto& row :
         pg->query("SELECT scheduled_for, outcome FROM job_runs WHERE job = ? AND by_hand = 0"
                   " AND scheduled_for > ? AND scheduled_for <= ?",
                   {std::string(job), load_started, next_minute})) {
      EXPECT_NE(row.text(1), "running") << job << " slot " << row.integer(0) << " left running";
      if (row.text(1) == "ok") ++ok[row.integer(0)];
    }
    std::size_t slots = 0;
    for (std::int64_t slot = (load_started / 60 + 1) * 60; slot <= next_minute; slot += 60) {
      EXPECT_EQ(ok[slot], 1) << job << " slot " << slot;
      ++slots;
    }
    EXPECT_EQ(ok.size(), slots) << job << ": runs for slots that are not minutes";
  }

  // The survivors took the dead instance's subscribers over, and are through their backlogs.
  const int survivor = (victim + 1) % kInstances;
  const auto subscribers = Json::parse(
      http(servers_[survivor]->port(), "GET", "/api/v1/events/subscribers", "", token_).body);
  ASSERT_FALSE(subscribers["subscribers"].empty());
  for (const auto& s : subscribers["subscribers"]) {
    EXPECT_NE(s["holder"], victim_name) << s.dump();
    EXPECT_EQ(s["backlog"], 0) << s.dump();
  }
  const std::string survivors =
      servers_[(victim + 1) % kInstances]->log() + servers_[(victim + 2) % kInstances]->log();
  EXPECT_NE(survivors.find("over from instance \"" + victim_name + "\""), std::string::npos);
  std::cout
      << "acknowledged: " << ack.alerts.size() << " alerts, " << ack.mails.size()
      << " LMTP messages, " << ack.incidents.size() << " webhooks; " << copies.size()
      << " messages delivered, " << repeated << " twice; "
      << pg->query("SELECT COUNT(*) FROM job_runs WHERE outcome = 'interrupted'").at(0).integer(0)
      << " job runs interrupted" << std::endl;
  for (int i = 0; i < kInstances; ++i) {
    if (i != victim) servers_[i]->stop();
  }
}

}  // namespace
}  // namespace slmhub::test
