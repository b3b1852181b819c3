// The ServiceNow client against the simulator (tests/support/servicenow_sim.py): what a user
// of the connector would notice, in exact values: raw string records with references
// flattened, every visible record of a paged list exactly once, keyset sweeps that survive
// ties and resume from a cursor, transient failures ridden out within the budget, permanent
// ones reported at once, OAuth tokens renewed, and creates that never duplicate. Back-off waits
// are recorded instead of slept, except where the budget's real timing is what is tested.
#include "client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "error_of.hpp"
#include "servicenow_sim.hpp"

namespace slmhub::servicenow {
namespace {

using std::chrono::milliseconds;
using test::error_of;
using test::ServiceNowSim;
using test::ServiceNowSimOptions;

// The waits the client asked for, in order; optionally really slept.
class Waits {
 public:
  explicit Waits(bool sleep = false) : sleep_(sleep) {}
  std::function<void(milliseconds)> function() {
    return [this](milliseconds d) {
      {
        std::lock_guard lock(mutex_);
        waits_.push_back(d);
      }
      if (sleep_) std::this_thread::sleep_for(d);
    };
  }
  std::vector<milliseconds> list() const {
    std::lock_guard lock(mutex_);
    return waits_;
  }

 private:
  const bool sleep_;
  mutable std::mutex mutex_;
  std::vector<milliseconds> waits_;
};

ClientSettings settings_for(const ServiceNowSim& sim, Waits& waits) {
  ClientSettings settings;
  settings.base_url = sim.base_url();
  settings.username = "slmhub";
  settings.password = "slmhub";
  settings.ca_file = sim.ca_file();
  settings.request_timeout = milliseconds(5000);
  settings.backoff_base = milliseconds(100);
  settings.backoff_cap = milliseconds(1000);
  settings.requests_per_second = 0;
  settings.sleep = waits.function();
  return settings;
}

std::string text(const Json& value) { return value.get<std::string>(); }

Record record_of(const Json& object) {
  Record record;
  for (const auto& [name, value] : object.items()) record[name] = value.get<std::string>();
  return record;
}

// The logged API requests (method, status), in the order the simulator answered them.
std::vector<std::pair<std::string, int>> calls(const Json& requests) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& r : requests) {
    out.emplace_back(r.at("method").get<std::string>() + " " + r.at("path").get<std::string>(),
                     r.at("status").get<int>());
  }
  return out;
}

std::string param(const Json& request, const std::string& name) {
  const auto& params = request.at("params");
  return params.contains(name) ? params.at(name).get<std::string>() : "(absent)";
}

Json bulk(const ServiceNowSim& sim, const Json& body) {
  Json request = body;
  request["return_ids"] = true;
  return sim.control("POST", "/sim/bulk/incident", request);
}

TEST(ServiceNowClient, ReadsRawStringValuesWithReferencesFlattened) {
  ServiceNowSim sim;
  Waits waits;
  const Json ann = sim.create("sys_user", {{"user_name", "ann"}, {"name", "Ann Example"}});
  const Json incident = sim.create("incident", {{"short_description", "Checkout is down"},
                                                {"caller_id", ann.at("sys_id")},
                                                {"impact", "1"},
                                                {"urgency", "2"},
                                                {"correlation_id", "SLM-7"}});
  const std::string id = text(incident.at("sys_id"));
  Client client(settings_for(sim, waits));

  const auto got = client.get("incident", id);
  ASSERT_TRUE(got.has_value());
  // Every field as stored, as strings, the journal fields reading back empty.
  Record expected = record_of(incident);
  expected["comments"] = "";
  expected["work_notes"] = "";
  EXPECT_EQ(*got, expected);
  EXPECT_EQ(got->at("caller_id"), text(ann.at("sys_id")));  // a reference: its sys_id
  EXPECT_EQ(got->at("assigned_to"), "");                    // an empty reference
  EXPECT_EQ(got->at("priority"), "2");                      // impact 1, urgency 2
  EXPECT_EQ(got->at("sys_mod_count"), "0");

  EXPECT_EQ(
      client.get("incident", id, {"number", "caller_id"}),
      (Record{{"number", text(incident.at("number"))}, {"caller_id", text(ann.at("sys_id"))}}));
  EXPECT_EQ(client.get("incident", "0123456789abcdef0123456789abcdef"), std::nullopt);

  const Json requests = sim.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& request : requests) {
    EXPECT_EQ(param(request, "sysparm_display_value"), "false");
    EXPECT_EQ(param(request, "sysparm_exclude_reference_link"), "true");
    EXPECT_EQ(text(request.at("user")), "slmhub");
  }
  EXPECT_EQ(param(requests[1], "sysparm_fields"), "number,caller_id");
  EXPECT_EQ(client.stats().requests, 3);
  EXPECT_EQ(client.stats().retries, 0);
}

TEST(ServiceNowClient, UpdatePatchesAndReturnsTheStoredRecord) {
  ServiceNowSim sim;
  Waits waits;
  const std::string id =
      text(sim.create("incident", {{"short_description", "Slow search"}}).at("sys_id"));
  Client client(settings_for(sim, waits));

  const Record updated =
      client.update("incident", id, {{"state", "2"}, {"comments", "Looking into it"}});
  EXPECT_EQ(updated.at("state"), "2");
  EXPECT_EQ(updated.at("incident_state"), "2");
  EXPECT_EQ(updated.at("sys_mod_count"), "1");
  EXPECT_EQ(updated.at("sys_updated_by"), "slmhub");
  EXPECT_EQ(updated.at("comments"), "");  // journal fields are write-only
  const Json journal = sim.control("GET", "/sim/journal/" + id).at("result");
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(text(journal[0].at("element")), "comments");
  EXPECT_EQ(text(journal[0].at("value")), "Looking into it");
  EXPECT_EQ(text(sim.requests().back().at("method")), "PATCH");

  const std::string missing = "0123456789abcdef0123456789abcdef";
  try {
    client.update("incident", missing, {{"state", "2"}});
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ServiceNow " + sim.base_url() + "/api/now/table/incident/" +
                                         missing +
                                         ": 404 No Record found (Record doesn't exist or ACL "
                                         "restricts the record retrieval) after 1 attempt");
    EXPECT_EQ(e.status(), 404);
  }
}

TEST(ServiceNowClient, ForbiddenIsReportedAtOnceWithServiceNowsMessage) {
  ServiceNowSim sim;
  Waits waits;
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  Client client(settings_for(sim, waits));
  sim.add_fault({{"kind", "status"},
                 {"status", 403},
                 {"method", "PATCH"},
                 {"message", "Operation Failed"},
                 {"detail", "Data policy Exception: Short description is mandatory"}});
  try {
    client.update("incident", id, {{"short_description", ""}});
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "ServiceNow " + sim.base_url() + "/api/now/table/incident/" + id +
                  ": 403 Operation Failed (Data policy Exception: Short description is "
                  "mandatory) after 1 attempt");
    EXPECT_EQ(e.status(), 403);
    EXPECT_EQ(e.message(), "Operation Failed");
    EXPECT_EQ(e.detail(), "Data policy Exception: Short description is mandatory");
  }
  EXPECT_EQ(
      calls(sim.requests()),
      (std::vector<std::pair<std::string, int>>{{"PATCH /api/now/table/incident/" + id, 403}}));
  EXPECT_EQ(client.stats().retries, 0);
  EXPECT_TRUE(waits.list().empty());
  EXPECT_EQ(text(sim.records("incident")[0].at("short_description")), "x");
}

TEST(ServiceNowClient, ListFollowsNextThroughAclShortPages) {
  ServiceNowSimOptions options;
  options.acl_every_nth = 3;  // hides the 3rd, 6th, ... record created
  ServiceNowSim sim(options);
  Waits waits;
  const Json ids =
      bulk(sim, {{"count", 25}, {"fields", {{"short_description", "bulk {i}"}}}}).at("sys_ids");
  ClientSettings settings = settings_for(sim, waits);
  settings.page_size = 5;
  Client client(settings);

  std::vector<std::size_t> sizes;
  std::vector<std::string> seen;
  client.list("incident", "", {"sys_id", "short_description"}, [&](std::vector<Record>&& page) {
    sizes.push_back(page.size());
    for (const auto& record : page) {
      EXPECT_EQ(record.size(), 2u);
      seen.push_back(record.at("sys_id"));
    }
  });
  std::vector<std::string> visible;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if ((i + 1) % 3 != 0) visible.push_back(text(ids[i]));
  }
  EXPECT_EQ(seen, visible);  // 17 of 25, each once, in order
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 3, 3, 4, 3}));
  const Json requests = sim.requests();
  ASSERT_EQ(requests.size(), 5u);
  std::vector<std::string> offsets;
  for (const auto& request : requests) offsets.push_back(param(request, "sysparm_offset"));
  EXPECT_EQ(offsets, (std::vector<std::string>{"(absent)", "5", "10", "15", "20"}));
}

TEST(ServiceNowClient, ListGoesOnPastAPageAclsHidWhole) {
  ServiceNowSim sim;
  Waits waits;
  const Json ids =
      bulk(sim, {{"count", 20}, {"fields", {{"short_description", "bulk {i}"}}}}).at("sys_ids");
  sim.create("incident", {{"short_description", "not bulk"}});
  Json hidden = Json::array();
  for (int i = 5; i < 10; ++i) hidden.push_back(ids[i]);
  sim.control("POST", "/sim/acl", {{"hidden", hidden}});
  ClientSettings settings = settings_for(sim, waits);
  settings.page_size = 5;
  Client client(settings);

  std::vector<std::size_t> sizes;
  std::vector<std::string> seen;
  client.list("incident", "short_descriptionSTARTSWITHbulk", {}, [&](std::vector<Record>&& page) {
    sizes.push_back(page.size());
    for (const auto& record : page) seen.push_back(record.at("sys_id"));
  });
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i < 5 || i >= 10) expected.push_back(text(ids[i]));
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{5, 0, 5, 5}));
}

TEST(ServiceNowClient, ACancelledTransactionIsAskedAgainWithHalfThePage) {
  ServiceNowSim sim;
  Waits waits;
  const Json ids = bulk(sim, {{"count", 10}}).at("sys_ids");
  // Every list page of more than 2 rows exceeds the instance's maximum execution time.
  sim.add_fault({{"kind", "cancel"}, {"count", -1}, {"min_limit", 2}});
  ClientSettings settings = settings_for(sim, waits);
  settings.page_size = 8;
  Client client(settings);
  std::vector<std::string> seen;
  client.list("incident", "", {"sys_id"}, [&](std::vector<Record>&& page) {
    for (const auto& record : page) seen.push_back(record.at("sys_id"));
  });
  EXPECT_EQ(seen, ids.get<std::vector<std::string>>());
  std::vector<std::string> limits;
  std::vector<int> statuses;
  for (const auto& request : sim.requests()) {
    limits.push_back(param(request, "sysparm_limit"));
    statuses.push_back(request.at("status").get<int>());
  }
  EXPECT_EQ(limits, (std::vector<std::string>{"8", "4", "2", "2", "2", "2", "2"}));
  EXPECT_EQ(statuses, (std::vector<int>{500, 500, 200, 200, 200, 200, 200}));
  EXPECT_EQ(client.stats().retries, 2);
  EXPECT_TRUE(waits.list().empty());
}

using Key = std::tuple<std::string, std::string>;  // (sys_updated_on, sys_id)

std::vector<Key> keys_in_sweep_order(const ServiceNowSim& sim) {
  std::vector<Key> keys;
  for (const auto& r : sim.records("incident")) {
    keys.emplace_back(text(r.at("sys_updated_on")), text(r.at("sys_id")));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST(ServiceNowClient, SweepCrossesTiesAndResumesFromItsCursor) {
  ServiceNowSim sim;
  Waits waits;
  // Ten records, three per second: pages of two split every tie.
  bulk(sim, {{"count", 10}, {"per_step", 3}, {"step_seconds", 1}});
  const std::vector<Key> all = keys_in_sweep_order(sim);
  ASSERT_EQ(all.size(), 10u);
  ASSERT_EQ(std::get<0>(all[0]), std::get<0>(all[2]));
  ClientSettings settings = settings_for(sim, waits);
  settings.page_size = 2;
  Client client(settings);

  std::vector<Key> seen;
  std::vector<Cursor> cursors;
  const Cursor end = client.sweep("incident", {}, "", {"sys_id", "sys_updated_on", "number"},
                                  [&](std::vector<Record>&& page, const Cursor& cursor) {
                                    for (const auto& r : page) {
                                      seen.emplace_back(r.at("sys_updated_on"), r.at("sys_id"));
                                    }
                                    cursors.push_back(cursor);
                                    return true;
                                  });
  EXPECT_EQ(seen, all);
  ASSERT_EQ(cursors.size(), 5u);
  EXPECT_EQ(cursors[0], (Cursor{std::get<0>(all[1]), std::get<1>(all[1])}));
  EXPECT_EQ(end, (Cursor{std::get<0>(all[9]), std::get<1>(all[9])}));
  // Keyset queries from the cursor, never offsets.
  const Json requests = sim.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(param(requests[0], "sysparm_query"), "ORDERBYsys_updated_on^ORDERBYsys_id");
  const auto [on, id] = all[1];
  EXPECT_EQ(param(requests[1], "sysparm_query"), "sys_updated_on>" + on +
                                                     "^NQsys_updated_on=" + on + "^sys_id>" + id +
                                                     "^ORDERBYsys_updated_on^ORDERBYsys_id");
  for (const auto& request : requests) EXPECT_EQ(param(request, "sysparm_offset"), "(absent)");

  // From a time on, that second included (a cursor without sys_id).
  std::vector<Key> from_time;
  client.sweep("incident", {std::get<0>(all[3]), ""}, "", {},
               [&](std::vector<Record>&& page, const Cursor&) {
                 for (const auto& r : page) {
                   from_time.emplace_back(r.at("sys_updated_on"), r.at("sys_id"));
                 }
                 return true;
               });
  EXPECT_EQ(from_time, std::vector<Key>(all.begin() + 3, all.end()));
  EXPECT_EQ(param(sim.requests().at(5), "sysparm_query"),
            "sys_updated_on>=" + std::get<0>(all[3]) + "^ORDERBYsys_updated_on^ORDERBYsys_id");

  // Stopped after two pages, then resumed after one of the records already seen changed:
  // the rest once, and the changed record again at its new place.
  int pages = 0;
  const Cursor stopped =
      client.sweep("incident", {}, "", {}, [&](auto&&, const Cursor&) { return ++pages < 2; });
  EXPECT_EQ(stopped, (Cursor{std::get<0>(all[3]), std::get<1>(all[3])}));
  const Json changed = sim.update("incident", std::get<1>(all[0]), {{"state", "2"}});
  std::vector<Key> resumed;
  client.sweep("incident", stopped, "", {}, [&](std::vector<Record>&& page, const Cursor&) {
    for (const auto& r : page) resumed.emplace_back(r.at("sys_updated_on"), r.at("sys_id"));
    return true;
  });
  std::vector<Key> expected(all.begin() + 4, all.end());
  expected.emplace_back(text(changed.at("sys_updated_on")), text(changed.at("sys_id")));
  EXPECT_EQ(resumed, expected);
}

TEST(ServiceNowClient, SweepSkipsPagesAclsHidWholeAndAndsTheExtraQuery) {
  ServiceNowSim sim;
  Waits waits;
  bulk(sim, {{"count", 8}, {"per_step", 1}, {"fields", {{"short_description", "bulk {i}"}}}});
  const std::vector<Key> all = keys_in_sweep_order(sim);
  sim.create("incident", {{"short_description", "not bulk"}});  // the extra query drops it
  sim.control("POST", "/sim/acl",
              {{"hidden", {std::get<1>(all[2]), std::get<1>(all[3]), std::get<1>(all[4])}}});
  ClientSettings settings = settings_for(sim, waits);
  settings.page_size = 2;
  Client client(settings);

  std::vector<Key> seen;
  int pages = 0;
  const Cursor end = client.sweep("incident", {}, "short_descriptionSTARTSWITHbulk", {},
                                  [&](std::vector<Record>&& page, const Cursor&) {
                                    ++pages;
                                    for (const auto& r : page)
                                      seen.emplace_back(r.at("sys_updated_on"), r.at("sys_id"));
                                    return true;
                                  });
  EXPECT_EQ(seen, (std::vector<Key>{all[0], all[1], all[5], all[6], all[7]}));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(end, (Cursor{std::get<0>(all[7]), std::get<1>(all[7])}));
  const Json requests = sim.requests();
  const auto [on, id] = all[1];
  const std::string keyset =
      "sys_updated_on>" + on + "^short_descriptionSTARTSWITHbulk" + "^NQsys_updated_on=" + on +
      "^sys_id>" + id + "^short_descriptionSTARTSWITHbulk" + "^ORDERBYsys_updated_on^ORDERBYsys_id";
  ASSERT_GE(requests.size(), 3u);
  // The second keyset query's first page was all hidden: its own next page, by offset.
  EXPECT_EQ(param(requests[1], "sysparm_query"), keyset);
  EXPECT_EQ(param(requests[2], "sysparm_query"), keyset);
  EXPECT_EQ(param(requests[2], "sysparm_offset"), "2");
}

TEST(ServiceNowClient, TooManyRequestsWaitsExactlyRetryAfter) {
  ServiceNowSim sim;
  Waits waits;
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  ClientSettings settings = settings_for(sim, waits);
  settings.backoff_cap = milliseconds(3000);
  Client client(settings);
  sim.add_fault({{"kind", "status"},
                 {"status", 429},
                 {"count", 3},
                 {"message", "Rate limit exceeded"},
                 {"headers", {{"Retry-After", "2"}}}});
  EXPECT_TRUE(client.get("incident", id).has_value());
  EXPECT_EQ(waits.list(), (std::vector<milliseconds>(3, milliseconds(2000))));
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.requests, 4);
  EXPECT_EQ(stats.retries, 3);
  EXPECT_EQ(stats.throttled, 3);
  EXPECT_EQ(stats.last_error, "ServiceNow " + sim.base_url() + "/api/now/table/incident/" + id +
                                  ": 429 Rate limit exceeded");

  // A wait longer than the back-off cap is not sat out: the caller hears at once.
  sim.add_fault({{"kind", "status"},
                 {"status", 429},
                 {"message", "Rate limit exceeded"},
                 {"headers", {{"Retry-After", "3600"}}}});
  try {
    client.get("incident", id);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ServiceNow " + sim.base_url() + "/api/now/table/incident/" +
                                         id +
                                         ": 429 Rate limit exceeded; Retry-After asks for 3600 s, "
                                         "longer than the back-off cap of 3000 ms after 1 attempt");
    EXPECT_EQ(e.status(), 429);
  }
  // Before it, the new request sat out what was left of the last hold (nothing was really
  // slept), and nothing after it.
  const auto w = waits.list();
  ASSERT_EQ(w.size(), 4u);
  EXPECT_GT(w[3], milliseconds(0));
  EXPECT_LE(w[3], milliseconds(2000));
  // The hour holds every later request too: each fails at once, and the instance hears
  // nothing until it is over.
  const std::size_t asked = sim.requests().size();
  const std::string held = error_of<Error>([&] { client.get("incident", id); });
  EXPECT_TRUE(held.starts_with("ServiceNow " + sim.base_url() + "/api/now/table/incident/" + id +
                               ": not sent: the instance asked for a pause (Retry-After) that "
                               "lasts 3"))
      << held;
  EXPECT_TRUE(held.ends_with(" s more, longer than the back-off cap of 3000 ms")) << held;
  EXPECT_EQ(sim.requests().size(), asked);
  EXPECT_EQ(waits.list().size(), 4u);
}

TEST(ServiceNowClient, RetryAfterAsADateIsWaitedUntil) {
  ServiceNowSim sim;
  Waits waits;
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  ClientSettings settings = settings_for(sim, waits);
  settings.backoff_cap = milliseconds(5000);
  Client client(settings);
  // As a proxy in front of the instance may send it.
  const std::time_t in_two = std::time(nullptr) + 2;
  std::tm utc{};
  gmtime_r(&in_two, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  sim.add_fault({{"kind", "status"}, {"status", 503}, {"headers", {{"Retry-After", date}}}});
  EXPECT_TRUE(client.get("incident", id).has_value());
  ASSERT_EQ(waits.list().size(), 1u) << date;
  EXPECT_GE(waits.list()[0], milliseconds(1000)) << date;
  EXPECT_LE(waits.list()[0], milliseconds(2000)) << date;
}

// Real time: an instance allowing 4 requests a second, a client budget of 6 a second and 2 at
// a time, 4 threads. Every request succeeds; the instance never sees more than the budget.
TEST(ServiceNowClient, RidesOutARateLimitStormWithinItsBudget) {
  ServiceNowSimOptions options;
  options.latency_ms = 50;
  ServiceNowSim sim(options);
  Waits waits(true);
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  sim.control("POST", "/sim/rate_limit", {{"limit", 4}, {"window_seconds", 1}});
  ClientSettings settings = settings_for(sim, waits);
  settings.requests_per_second = 6;
  settings.max_concurrency = 2;
  settings.max_attempts = 10;
  settings.backoff_cap = milliseconds(2000);
  Client client(settings);

  std::vector<std::thread> threads;
  std::mutex mutex;
  int succeeded = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        if (client.get("incident", id)) {
          std::lock_guard lock(mutex);
          ++succeeded;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded, 16);

  const Json requests = sim.requests();
  std::vector<std::int64_t> arrivals_us;  // the simulator logs epoch seconds with a fraction
  int throttled = 0;
  for (const auto& request : requests) {
    arrivals_us.push_back(std::llround(request.at("time").get<double>() * 1e6));
    if (request.at("status") == 429) ++throttled;
  }
  std::sort(arrivals_us.begin(), arrivals_us.end());
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.requests, static_cast<std::int64_t>(requests.size()));
  EXPECT_EQ(stats.throttled, throttled);
  EXPECT_GE(throttled, 1);  // more than the instance allows was asked for
  EXPECT_EQ(stats.requests, 16 + throttled);
  // Each 429 (Retry-After: 1) was waited out for exactly its second.
  const auto w = waits.list();
  EXPECT_GE(std::count(w.begin(), w.end(), milliseconds(1000)), throttled);
  // Never more than 6 in a second, never more than 2 at once (each takes 50 ms): the
  // margins are for the simulator's own scheduling.
  for (std::size_t i = 0; i + 6 < arrivals_us.size(); ++i) {
    EXPECT_GE(arrivals_us[i + 6] - arrivals_us[i], 950000) << "requests " << i << " to " << i + 6;
  }
  for (std::size_t i = 0; i + 2 < arrivals_us.size(); ++i) {
    EXPECT_GE(arrivals_us[i + 2] - arrivals_us[i], 40000) << "requests " << i << " to " << i + 2;
  }
}

TEST(ServiceNowClient, ServerErrorsHtmlTimeoutsAndDropsAreRetried) {
  ServiceNowSim sim;
  Waits waits;
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  ClientSettings settings = settings_for(sim, waits);
  settings.request_timeout = milliseconds(500);
  Client client(settings);
  sim.control("POST", "/sim/faults",
              {{"faults",
                {{{"kind", "status"}, {"status", 500}},
                 {{"kind", "html"}},
                 {{"kind", "slow"}, {"delay_ms", 1500}},
                 {{"kind", "drop"}}}}});
  const auto got = client.get("incident", id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->at("sys_id"), id);
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.requests, 5);
  EXPECT_EQ(stats.retries, 4);
  EXPECT_EQ(stats.throttled, 0);
  // Full jitter under a doubling ceiling: 100, 200, 400, 800 ms. A jitter of 0 ms is no wait
  // at all (about 2 % of runs have one), so the i-th wait seen belongs to retry i .. i + skipped.
  const auto w = waits.list();
  ASSERT_LE(w.size(), 4u);
  ASSERT_GE(w.size(), 1u);
  const std::size_t skipped = 4 - w.size();
  for (std::size_t i = 0; i < w.size(); ++i) {
    EXPECT_GT(w[i], milliseconds(0)) << i;
    EXPECT_LE(w[i], milliseconds(100 << (i + skipped))) << i;
  }
  EXPECT_TRUE(stats.last_error.starts_with("ServiceNow " + sim.base_url() +
                                           "/api/now/table/incident/" + id + ": no response: "))
      << stats.last_error;

  // Given up after max_attempts, saying what happened last.
  settings.max_attempts = 2;
  Client impatient(settings);
  sim.add_fault({{"kind", "html"}, {"count", -1}});
  EXPECT_EQ(error_of<Error>([&] { impatient.get("incident", id); }),
            "ServiceNow " + sim.base_url() + "/api/now/table/incident/" + id +
                ": 200 with content type text/html;charset=UTF-8 instead of JSON (a hibernating "
                "instance answers with an HTML page) after 2 attempts");
  sim.control("DELETE", "/sim/faults");
  sim.add_fault({{"kind", "status"}, {"status", 502}, {"count", -1}});
  EXPECT_EQ(error_of<Error>([&] { impatient.get("incident", id); }),
            "ServiceNow " + sim.base_url() + "/api/now/table/incident/" + id +
                ": 502 Bad Gateway after 2 attempts");
}

TEST(ServiceNowClient, OAuthTokensAreRenewedWhenTheInstanceRejectsThem) {
  ServiceNowSimOptions options;
  options.oauth_clients = {{"slmhub-app", "app-secret"}};
  ServiceNowSim sim(options);
  Waits waits;
  const std::string id = text(sim.create("incident", {{"short_description", "x"}}).at("sys_id"));
  ClientSettings settings = settings_for(sim, waits);
  settings.auth = ClientSettings::Auth::oauth;
  settings.client_id = "slmhub-app";
  settings.client_secret = "app-secret";
  Client client(settings);

  const auto grants = [&](std::int64_t since) {
    std::vector<std::string> out;
    for (const auto& r : sim.requests(since)) {
      out.push_back(r.at("method").get<std::string>() + " " + r.at("path").get<std::string>() +
                    " " + std::to_string(r.at("status").get<int>()) +
                    (r.contains("body") ? " " + r.at("body").at("grant_type").get<std::string>()
                                        : " " + r.at("auth").get<std::string>()));
    }
    return out;
  };
  const std::string table = "GET /api/now/table/incident/" + id;
  EXPECT_TRUE(client.get("incident", id).has_value());
  EXPECT_EQ(grants(0),
            (std::vector<std::string>{"POST /oauth_token.do 200 password", table + " 200 bearer"}));
  EXPECT_EQ(client.stats().token_refreshes, 0);

  // The access token expired early: one 401, the refresh token, the request again.
  sim.control("POST", "/sim/tokens/expire", Json::object());
  EXPECT_TRUE(client.get("incident", id).has_value());
  EXPECT_EQ(grants(2),
            (std::vector<std::string>{table + " 401 none", "POST /oauth_token.do 200 refresh_token",
                                      table + " 200 bearer"}));
  EXPECT_EQ(client.stats().token_refreshes, 1);

  // The refresh token too: refused, so the password grant.
  sim.control("POST", "/sim/tokens/expire", {{"refresh", true}});
  EXPECT_TRUE(client.get("incident", id).has_value());
  EXPECT_EQ(grants(5),
            (std::vector<std::string>{table + " 401 none", "POST /oauth_token.do 401 refresh_token",
                                      "POST /oauth_token.do 200 password", table + " 200 bearer"}));
  EXPECT_EQ(client.stats().token_refreshes, 2);
  EXPECT_EQ(client.stats().requests, 9);

  settings.client_secret = "wrong";
  Client refused(settings);
  try {
    refused.get("incident", id);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "ServiceNow " + sim.base_url() +
                                         "/oauth_token.do: 401 server_error (access_denied) "
                                         "after 1 attempt");
    EXPECT_EQ(e.status(), 401);
  }
}

std::vector<Json> with_key(const ServiceNowSim& sim, const std::string& key) {
  std::vector<Json> out;
  for (const auto& r : sim.records("incident")) {
    if (text(r.at("correlation_id")) == key) out.push_back(r);
  }
  return out;
}

TEST(ServiceNowClient, CreateUniqueCreatesOnceAndFindsItAfterwards) {
  ServiceNowSim sim;
  Waits waits;
  sim.create("incident", {{"short_description", "someone else's"}, {"correlation_id", "OTHER"}});
  Client client(settings_for(sim, waits));
  const Record fields = {{"correlation_id", "SLM-INC-42"},
                         {"short_description", "Checkout is down"},
                         {"impact", "1"},
                         {"urgency", "1"}};
  const Record created = client.create_unique("incident", fields, "correlation_id");
  EXPECT_TRUE(created.at("number").starts_with("INC")) << created.at("number");
  EXPECT_EQ(created.at("priority"), "1");
  EXPECT_EQ(created.at("sys_mod_count"), "0");
  EXPECT_EQ(created.at("correlation_id"), "SLM-INC-42");
  const Record again = client.create_unique("incident", fields, "correlation_id");
  EXPECT_EQ(again, created);
  const auto stored = with_key(sim, "SLM-INC-42");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(text(stored[0].at("sys_id")), created.at("sys_id"));
  const Json requests = sim.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(param(requests[0], "sysparm_query"), "correlation_id=SLM-INC-42");
  EXPECT_EQ(calls(requests),
            (std::vector<std::pair<std::string, int>>{{"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 201},
                                                      {"GET /api/now/table/incident", 200}}));

  // A key field the table does not have would widen the lookup to every record: refused
  // before anything is created.
  EXPECT_EQ(error_of<std::invalid_argument>([&] {
              client.create_unique("incident", {{"u_external_ref", "X-1"}}, "u_external_ref");
            }),
            "ServiceNow " + sim.base_url() +
                "/api/now/table/incident: the records have no field 'u_external_ref', so it "
                "cannot identify a record (ServiceNow ignores unknown fields in queries)");
  EXPECT_EQ(sim.records("incident").size(), 2u);
}

TEST(ServiceNowClient, CreateUniqueAfterAConnectionDroppedPastTheCommitLeavesOneRecord) {
  ServiceNowSim sim;
  Waits waits;
  Client client(settings_for(sim, waits));
  sim.add_fault({{"kind", "drop"},
                 {"after_commit", true},
                 {"method", "POST"},
                 {"path", "/api/now/table/incident"}});
  const Record created = client.create_unique(
      "incident", {{"correlation_id", "SLM-INC-43"}, {"short_description", "x"}}, "correlation_id");
  const auto stored = with_key(sim, "SLM-INC-43");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(created.at("sys_id"), text(stored[0].at("sys_id")));
  EXPECT_EQ(calls(sim.requests()),
            (std::vector<std::pair<std::string, int>>{{"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 0},
                                                      {"GET /api/now/table/incident", 200}}));
  // The back-off before looking again, unless its jitter came out as 0 ms (no wait at all).
  EXPECT_LE(waits.list().size(), 1u);
}

TEST(ServiceNowClient, ACreateThatMayStillBeRunningIsNotSentAgainAtOnce) {
  ServiceNowSim sim;
  Waits waits;
  Client client(settings_for(sim, waits));
  // No answer, and nothing stored yet: the instance may still be inserting it.
  sim.add_fault({{"kind", "drop"}, {"method", "POST"}, {"path", "/api/now/table/incident"}});
  const std::string refused = error_of<Error>([&] {
    client.create_unique("incident", {{"correlation_id", "SLM-INC-46"}, {"short_description", "x"}},
                         "correlation_id");
  });
  EXPECT_NE(refused.find("no record with correlation_id 'SLM-INC-46' exists yet"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("may still be running"), std::string::npos) << refused;
  EXPECT_EQ(calls(sim.requests()),
            (std::vector<std::pair<std::string, int>>{{"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 0},
                                                      {"GET /api/now/table/incident", 200}}));
  EXPECT_TRUE(with_key(sim, "SLM-INC-46").empty());
  // The same after a gateway's time-out.
  sim.add_fault({{"kind", "status"}, {"status", 504}, {"method", "POST"}});
  EXPECT_NE(
      error_of<Error>([&] {
        client.create_unique("incident", {{"correlation_id", "SLM-INC-46"}}, "correlation_id");
      }).find("may still be running"),
      std::string::npos);
  // Asked again later, it looks first and creates one.
  client.create_unique("incident", {{"correlation_id", "SLM-INC-46"}}, "correlation_id");
  EXPECT_EQ(with_key(sim, "SLM-INC-46").size(), 1u);
}

TEST(ServiceNowClient, CreateUniqueLooksAgainBeforePostingAgain) {
  ServiceNowSim sim;
  Waits waits;
  Client client(settings_for(sim, waits));
  // Not committed: a 500, then a hibernation page.
  sim.control("POST", "/sim/faults",
              {{"faults",
                {{{"kind", "status"}, {"status", 500}, {"method", "POST"}},
                 {{"kind", "html"}, {"method", "POST"}}}}});
  const Record created = client.create_unique(
      "incident", {{"correlation_id", "SLM-INC-44"}, {"short_description", "x"}}, "correlation_id");
  ASSERT_EQ(with_key(sim, "SLM-INC-44").size(), 1u);
  EXPECT_EQ(calls(sim.requests()),
            (std::vector<std::pair<std::string, int>>{{"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 500},
                                                      {"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 200},
                                                      {"GET /api/now/table/incident", 200},
                                                      {"POST /api/now/table/incident", 201}}));
  EXPECT_EQ(client.stats().retries, 2);

  // Refused by a business rule: reported at once, nothing created.
  sim.add_fault({{"kind", "status"},
                 {"status", 403},
                 {"method", "POST"},
                 {"message", "Operation Failed"},
                 {"detail", "Error during insert of incident (a business rule aborted it)"}});
  EXPECT_EQ(
      error_of<Error>([&] {
        client.create_unique("incident", {{"correlation_id", "SLM-INC-45"}}, "correlation_id");
      }),
      "ServiceNow " + sim.base_url() +
          "/api/now/table/incident: 403 Operation Failed (Error during insert of incident "
          "(a business rule aborted it)) after 1 attempt");
  EXPECT_TRUE(with_key(sim, "SLM-INC-45").empty());

  // Never a definite answer: the last lookup says there is no record.
  ClientSettings settings = settings_for(sim, waits);
  settings.max_attempts = 2;
  Client impatient(settings);
  sim.add_fault({{"kind", "status"}, {"status", 503}, {"method", "POST"}, {"count", -1}});
  EXPECT_EQ(
      error_of<Error>([&] {
        impatient.create_unique("incident", {{"correlation_id", "SLM-INC-46"}}, "correlation_id");
      }),
      "ServiceNow " + sim.base_url() +
          "/api/now/table/incident: 503 Service Unavailable; no record with correlation_id "
          "'SLM-INC-46' exists after 2 attempts");
  EXPECT_TRUE(with_key(sim, "SLM-INC-46").empty());
}

TEST(ServiceNowClient, ImportRowsCoalesceOnTheKeyAndAreRetried) {
  ServiceNowSim sim;
  Waits waits;
  Client client(settings_for(sim, waits));
  const ImportResult inserted =
      client.import_row("u_slmhub_incident_import",
                        {{"u_correlation_id", "SLM-IMP-1"}, {"u_short_description", "Imported"}});
  EXPECT_EQ(inserted.status, "inserted");
  EXPECT_EQ(inserted.table, "incident");
  EXPECT_EQ(inserted.error, "");
  sim.add_fault({{"kind", "status"}, {"status", 500}, {"method", "POST"}});
  const ImportResult updated = client.import_row(
      "u_slmhub_incident_import",
      {{"u_correlation_id", "SLM-IMP-1"}, {"u_short_description", "Imported again"}});
  EXPECT_EQ(updated.status, "updated");
  EXPECT_EQ(updated.sys_id, inserted.sys_id);
  const auto stored = with_key(sim, "SLM-IMP-1");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(text(stored[0].at("sys_id")), inserted.sys_id);
  EXPECT_EQ(text(stored[0].at("short_description")), "Imported again");
  EXPECT_EQ(client.stats().retries, 1);
}

TEST(ServiceNowTls, TheInstanceCertificateIsVerified) {
  ServiceNowSimOptions options;
  options.tls = true;
  ServiceNowSim sim(options);
  Waits waits;
  ClientSettings settings = settings_for(sim, waits);
  ASSERT_TRUE(settings.base_url.starts_with("https://127.0.0.1:"));
  Client trusting(settings);
  EXPECT_EQ(trusting.get("incident", "0123456789abcdef0123456789abcdef"), std::nullopt);

  // Not among the system's CAs: refused, and not tried again.
  settings.ca_file.clear();
  Client untrusting(settings);
  try {
    untrusting.get("incident", "0123456789abcdef0123456789abcdef");
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(what.find(": no response: SSL certificate problem: self"), std::string::npos) << what;
    EXPECT_TRUE(what.ends_with(" after 1 attempt")) << what;
  }
  EXPECT_EQ(untrusting.stats().requests, 1);
  EXPECT_EQ(sim.requests().size(), 1u);  // only the trusting client's
}

TEST(ServiceNowTls, ACertificateForAnotherNameIsRefused) {
  ServiceNowSimOptions options;
  options.tls = true;
  options.certificate_name = "localhost";
  ServiceNowSim sim(options);
  Waits waits;
  ClientSettings settings = settings_for(sim, waits);
  settings.base_url = "https://127.0.0.1:" + std::to_string(sim.port());
  Client client(settings);
  try {
    client.get("incident", "0123456789abcdef0123456789abcdef");
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.status(), 0);
    EXPECT_EQ(what, "ServiceNow " + settings.base_url +
                        "/api/now/table/incident/0123456789abcdef0123456789abcdef: no response: "
                        "SSL: no alternative certificate subject name matches target host name "
                        "'127.0.0.1' after 1 attempt");
  }
  EXPECT_TRUE(sim.requests().empty());
}

TEST(ServiceNowTls, MutualTlsNeedsTheClientCertificate) {
  ServiceNowSimOptions options;
  options.require_client_certificate = true;
  ServiceNowSim sim(options);
  Waits waits;
  ClientSettings settings = settings_for(sim, waits);
  settings.client_certificate = sim.client_certificate();
  settings.client_key = sim.client_key();
  Client with_certificate(settings);
  const Json created = sim.create("incident", {{"short_description", "x"}});
  const std::string id = text(created.at("sys_id"));
  const auto got = with_certificate.get("incident", id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->at("number"), text(created.at("number")));

  settings.client_certificate.clear();
  settings.client_key.clear();
  settings.max_attempts = 2;
  Client without(settings);
  try {
    without.get("incident", id);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(what.find(": no response: "), std::string::npos) << what;
  }
  EXPECT_EQ(sim.requests().size(), 1u);  // only the request with the certificate got in
}

}  // namespace
}  // namespace slmhub::servicenow
