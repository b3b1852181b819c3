// The job scheduler on SQLite and PostgreSQL, with time from a ManualClock: a new job does
// not run for the past, slots missed while the server was down give one run, runs by hand
// are recorded as such, and a second instance on the same database neither runs a slot
// the first one ran nor a job whose lease another instance holds.
#include "jobs/job_scheduler.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "config/settings.hpp"
#include "manual_clock.hpp"
#include "storage/database.hpp"
#include "store_fixture.hpp"
#include "test_logger.hpp"

namespace slmhub::host {
namespace {

using namespace std::chrono_literals;
using test::ManualClock;
using test::TestLogger;

using test::Engine;
using test::engine_name;
using test::StoreTest;

// ---- helpers --------------------------------------------------------------------------

using JobSchedulerTest = StoreTest;

// Records every context a job was run with.
struct Calls {
  std::mutex mutex;
  std::vector<JobContext> contexts;

  std::function<std::string(const JobContext&)> fn(std::string output = "done") {
    return [this, output](const JobContext& context) {
      std::lock_guard lock(mutex);
      contexts.push_back(context);
      return output;
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return contexts.size();
  }
};

JobSpec job(const std::string& name, const std::string& schedule,
            std::function<std::string(const JobContext&)> run, const std::string& zone = "UTC") {
  return JobSpec{name, schedule, zone, "test job " + name, std::move(run)};
}

Instant at(std::string_view text) { return parse_instant(text); }

std::int64_t count_runs(Store& store, const std::string& name) {
  return store.query("SELECT COUNT(*) FROM job_runs WHERE job = ?", {name}).at(0).integer(0);
}

// What an instance "dead" leaves when it dies while running `job`'s slot `slot`: the run
// still "running" and its lease, good until `lease_until`.
void leave_dead_run(Store& store, const std::string& job, Instant slot, Instant lease_until) {
  store.transact([&](Tx& tx) {
    tx.exec("INSERT INTO job_leases (job, holder, expires_at) VALUES (?, 'dead', ?)",
            {job, to_epoch(lease_until)});
    tx.exec(
        "INSERT INTO job_runs (job, scheduled_for, started_at, outcome, by_hand, instance)"
        " VALUES (?, ?, ?, 'running', 0, 'dead')",
        {job, to_epoch(slot), to_epoch(slot)});
  });
}

// ---- tests ----------------------------------------------------------------------------

TEST_P(JobSchedulerTest, RefusesBadJobsNamingThem) {
  JobScheduler scheduler(*db_, clock_, log_, "a");
  Calls calls;
  scheduler.add(job("report.draft", "0 6 1 * *", calls.fn()));
  auto refused = [&](JobSpec spec, const std::string& needle) {
    try {
      scheduler.add(std::move(spec));
      ADD_FAILURE() << "accepted a job that should be refused (" << needle << ")";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  refused(job("report.draft", "0 7 1 * *", calls.fn()), "job \"report.draft\" is already");
  refused(job("bad.cron", "61 * * * *", calls.fn()), "job \"bad.cron\"");
  refused(job("bad.cron", "* * *", calls.fn()), "job \"bad.cron\"");
  refused(job("bad.zone", "0 * * * *", calls.fn(), "Mars/Olympus_Mons"), "Mars/Olympus_Mons");
  refused(job("", "0 * * * *", calls.fn()), "name");
  refused(job("no.function", "0 * * * *", nullptr), "job \"no.function\" has no run function");
  JobSpec customer = job("bad.role", "0 * * * *", calls.fn());
  customer.role = "customer:registrar";
  refused(customer, "job \"bad.role\": 'customer:registrar' is not a staff role");
  EXPECT_EQ(scheduler.list().size(), 1u);
  EXPECT_EQ(scheduler.list()[0].role, "operator");
  EXPECT_EQ(scheduler.role("report.draft"), "operator");
}

TEST_P(JobSchedulerTest, ANewJobRunsFromItsFirstSlotOnNotForThePast) {
  clock_.set("2026-11-02T10:30:00Z");
  JobScheduler scheduler(*db_, clock_, log_, "a");
  Calls calls;
  scheduler.add(job("hourly", "0 * * * *", calls.fn("42 tickets checked")));

  EXPECT_EQ(scheduler.tick(), 0);  // 10:00 was before the job existed
  clock_.set("2026-11-02T10:59:59Z");
  EXPECT_EQ(scheduler.tick(), 0);
  clock_.set("2026-11-02T11:00:20Z");
  EXPECT_EQ(scheduler.tick(), 1);
  EXPECT_EQ(scheduler.tick(), 0);  // the slot is done
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.contexts[0].scheduled_for, at("2026-11-02T11:00:00Z"));
  EXPECT_EQ(calls.contexts[0].now, at("2026-11-02T11:00:20Z"));
  EXPECT_FALSE(calls.contexts[0].by_hand);

  const auto runs = scheduler.runs("hourly", 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].outcome, "ok");
  EXPECT_EQ(runs[0].output, "42 tickets checked");
  EXPECT_EQ(runs[0].scheduled_for, at("2026-11-02T11:00:00Z"));
  EXPECT_EQ(runs[0].started_at, at("2026-11-02T11:00:20Z"));
  EXPECT_EQ(runs[0].finished_at, at("2026-11-02T11:00:20Z"));
  EXPECT_EQ(runs[0].instance, "a");
  EXPECT_FALSE(runs[0].by_hand);
}

TEST_P(JobSchedulerTest, SlotsMissedWhileDownRunOnceAtTheNextTick) {
  Calls quarter, monthly;
  auto add_jobs = [&](JobScheduler& scheduler) {
    scheduler.add(job("quarter", "*/15 * * * *", quarter.fn()));
    // 06:00 on the 1st in Chicago; never run before the downtime.
    scheduler.add(job("monthly", "0 6 1 * *", monthly.fn(), "America/Chicago"));
  };
  clock_.set("2026-10-20T09:00:00Z");
  {
    JobScheduler before(*db_, clock_, log_, "a");
    add_jobs(before);
    clock_.set("2026-10-20T09:15:00Z");
    EXPECT_EQ(before.tick(), 1);
  }
  db_.reset();  // the server goes down ...

  clock_.set("2026-12-03T11:40:00Z");  // ... and comes back weeks later
  db_ = Database::open(url_);
  JobScheduler after(*db_, clock_, log_, "a");
  add_jobs(after);
  EXPECT_EQ(after.tick(), 2);
  EXPECT_EQ(after.tick(), 0);

  ASSERT_EQ(quarter.size(), 2u);
  EXPECT_EQ(quarter.contexts[1].scheduled_for, at("2026-12-03T11:30:00Z"));
  EXPECT_EQ(quarter.contexts[1].now, at("2026-12-03T11:40:00Z"));
  EXPECT_EQ(count_runs(*db_, "quarter"), 2);
  ASSERT_EQ(monthly.size(), 1u);  // Nov 1 and Dec 1 were missed: one run, for Dec 1
  EXPECT_EQ(monthly.contexts[0].scheduled_for, at("2026-12-01T12:00:00Z"));  // 06:00 CST
  EXPECT_EQ(count_runs(*db_, "monthly"), 1);

  clock_.set("2026-12-03T11:45:00Z");
  EXPECT_EQ(after.tick(), 1);
  EXPECT_EQ(quarter.contexts.back().scheduled_for, at("2026-12-03T11:45:00Z"));
}

// A stop asked for while a tick runs its jobs waits for the job running, and starts no other
// (after downtime a tick has every missed slot to run; systemd kills a stop that takes long).
TEST_P(JobSchedulerTest, AStopDuringATickStartsNoFurtherJob) {
  clock_.set("2026-12-03T11:00:00Z");
  JobScheduler scheduler(*db_, clock_, log_, "a");
  Calls later;
  // Jobs run in name order: "a.first" asks the scheduler to stop, as SIGTERM would.
  scheduler.add(job("a.first", "*/15 * * * *", [&](const JobContext&) {
    scheduler.stop();
    return std::string("stopping");
  }));
  scheduler.add(job("b.second", "*/15 * * * *", later.fn()));
  clock_.set("2026-12-03T11:15:00Z");
  EXPECT_EQ(scheduler.tick(), 1);
  EXPECT_EQ(later.size(), 0u);
  EXPECT_EQ(count_runs(*db_, "b.second"), 0);
}

// Retention: runs older than the cut go, except one still running and each job's latest
// finished scheduled run, which a restart reads to catch up on the slots it missed.
TEST_P(JobSchedulerTest, PruneKeepsTheLatestScheduledRunOfEachJob) {
  Calls daily, weekly;
  auto add_jobs = [&](JobScheduler& scheduler) {
    scheduler.add(job("daily", "0 3 * * *", daily.fn()));
    scheduler.add(job("weekly", "0 4 * * 1", weekly.fn()));  // Mondays
  };
  clock_.set("2026-09-30T12:00:00Z");
  {
    JobScheduler scheduler(*db_, clock_, log_, "a");
    add_jobs(scheduler);
    for (int day = 1; day <= 10; ++day) {  // 2026-10-01 .. 10-10: ten daily runs, one weekly
      clock_.advance(std::chrono::days(1));
      scheduler.tick();
    }
    EXPECT_EQ(scheduler.run_now("weekly"), "done");  // by hand, 10-10 12:00
    EXPECT_EQ(count_runs(*db_, "daily"), 10);
    EXPECT_EQ(count_runs(*db_, "weekly"), 2);
    leave_dead_run(*db_, "daily", at("2026-10-11T03:00:00Z"), at("2026-10-11T03:01:00Z"));

    clock_.set("2027-02-01T12:00:00Z");
    // Ninety days before: 2026-11-03. Every run is older; kept: daily's 10-10 run, weekly's
    // 10-05 run, the by-hand run after it, and the run left "running".
    EXPECT_EQ(scheduler.prune(clock_.now() - std::chrono::days(90)), 9);
    EXPECT_EQ(count_runs(*db_, "daily"), 2);
    EXPECT_EQ(count_runs(*db_, "weekly"), 2);
    EXPECT_EQ(scheduler.prune(clock_.now() - std::chrono::days(90)), 0);
  }
  // A restart still knows where each job stopped: one catch-up run each, not the history.
  db_.reset();
  db_ = Database::open(url_);
  JobScheduler after(*db_, clock_, log_, "a");
  add_jobs(after);
  const std::size_t daily_before = daily.size();
  const std::size_t weekly_before = weekly.size();
  EXPECT_EQ(after.tick(), 2);
  EXPECT_EQ(daily.size(), daily_before + 1);
  EXPECT_EQ(daily.contexts.back().scheduled_for, at("2027-02-01T03:00:00Z"));
  EXPECT_EQ(weekly.size(), weekly_before + 1);
  EXPECT_EQ(weekly.contexts.back().scheduled_for, at("2027-02-01T04:00:00Z"));
}

TEST(RetentionSettingsTest, KeepDaysAreBoundedAndNamedWhereSet) {
  Settings settings;
  EXPECT_EQ(settings.validate_host_keys(), std::vector<std::string>{});
  EXPECT_EQ(settings.integer("events.keep_days"), 30);
  EXPECT_EQ(settings.integer("jobs.keep_days"), 90);
  EXPECT_EQ(settings.integer("outbox.keep_days"), 30);
  settings.set("events.keep_days", "36501");
  settings.set("outbox.keep_days", "-1");
  settings.set("jobs.keep_days", "0");
  EXPECT_EQ(settings.validate_host_keys(),
            (std::vector<std::string>{
                "(defaults): 'events.keep_days' must be from 0 to 36500 (a hundred years), "
                "found 36501",
                "(defaults): 'outbox.keep_days' must be from 0 to 36500 (a hundred years), "
                "found -1",
                "(defaults): 'jobs.keep_days' must be from 1 to 36500 (a hundred years), "
                "found 0"}));
  settings.set("events.keep_days", "0");
  settings.set("outbox.keep_days", "0");
  settings.set("jobs.keep_days", "1");
  EXPECT_EQ(settings.validate_host_keys(), std::vector<std::string>{});
}

TEST_P(JobSchedulerTest, RunNowIsRecordedAsByHand) {
  JobScheduler scheduler(*db_, clock_, log_, "a");
  Calls calls;
  scheduler.add(job("hourly", "0 * * * *", calls.fn("reconciled 3 tickets")));
  std::atomic<bool> fail{true};
  scheduler.add(job("broken", "0 0 1 1 *", [&](const JobContext&) -> std::string {
    if (fail) throw std::runtime_error("ServiceNow answered 503");
    return "fine";
  }));

  clock_.set("2026-11-02T10:00:00Z");  // also the hourly slot
  EXPECT_EQ(scheduler.run_now("hourly"), "reconciled 3 tickets");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls.contexts[0].by_hand);
  EXPECT_EQ(calls.contexts[0].scheduled_for, at("2026-11-02T10:00:00Z"));
  auto runs = scheduler.runs("hourly", 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(runs[0].by_hand);
  EXPECT_EQ(runs[0].outcome, "ok");
  EXPECT_EQ(to_json(runs[0])["by_hand"], true);

  // A run by hand does not use up the scheduled slot of the same second.
  EXPECT_EQ(scheduler.tick(), 1);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls.contexts[1].by_hand);
  EXPECT_EQ(scheduler.run_now("hourly"), "reconciled 3 tickets");  // twice in one second
  EXPECT_EQ(count_runs(*db_, "hourly"), 3);

  try {
    scheduler.run_now("broken");
    ADD_FAILURE() << "a failing job did not throw";
  } catch (const JobFailed& e) {
    EXPECT_STREQ(e.what(), "job \"broken\" failed: ServiceNow answered 503");
  }
  runs = scheduler.runs("broken", 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].outcome, "failed");
  EXPECT_EQ(runs[0].output, "ServiceNow answered 503");
  EXPECT_TRUE(runs[0].by_hand);

  EXPECT_THROW(scheduler.run_now("no.such.job"), std::out_of_range);
  EXPECT_THROW(scheduler.runs("no.such.job", 10), std::out_of_range);
}

TEST_P(JobSchedulerTest, AFailedRunIsRecordedAndNotRepeatedForItsSlot) {
  JobScheduler scheduler(*db_, clock_, log_, "a");
  int calls = 0;
  scheduler.add(job("flaky", "0 * * * *", [&](const JobContext&) -> std::string {
    ++calls;
    throw std::runtime_error("mailbox locked");
  }));
  clock_.set("2026-11-02T10:00:00Z");
  EXPECT_EQ(scheduler.tick(), 1);
  EXPECT_EQ(scheduler.tick(), 0);
  EXPECT_EQ(calls, 1);
  const auto runs = scheduler.runs("flaky", 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].outcome, "failed");
  EXPECT_EQ(runs[0].output, "mailbox locked");
  EXPECT_TRUE(log_.contains("job \"flaky\" failed: mailbox locked", "error"));
}

// Two instances with their own connections and instance ids, both ticking each slot.
TEST_P(JobSchedulerTest, ASecondInstanceDoesNotRunASlotTheFirstRan) {
  auto other_db = Database::open(url_);
  JobScheduler first(*db_, clock_, log_, "first");
  JobScheduler second(*other_db, clock_, log_, "second");
  Calls calls;
  first.add(job("watch", "*/5 * * * *", calls.fn()));
  second.add(job("watch", "*/5 * * * *", calls.fn()));

  clock_.set("2026-11-02T09:05:00Z");
  EXPECT_EQ(first.tick(), 1);
  EXPECT_EQ(second.tick(), 0);
  EXPECT_EQ(calls.size(), 1u);

  // Now both at once, slot after slot.
  for (int slot = 2; slot <= 9; ++slot) {
    clock_.advance(5min);
    std::atomic<bool> go{false};
    std::atomic<int> started{0};
    std::thread a([&] {
      while (!go) std::this_thread::yield();
      started += first.tick();
    });
    std::thread b([&] {
      while (!go) std::this_thread::yield();
      started += second.tick();
    });
    go = true;
    a.join();
    b.join();
    EXPECT_EQ(started, 1) << "slot " << slot;
  }
  EXPECT_EQ(calls.size(), 9u);
  EXPECT_EQ(count_runs(*db_, "watch"), 9);
  for (std::size_t i = 1; i < calls.contexts.size(); ++i) {
    EXPECT_EQ(calls.contexts[i].scheduled_for - calls.contexts[i - 1].scheduled_for, 5min);
  }
}

// An instance that died while running a job: its lease blocks everyone until it expires;
// then the next runner records the dead run as interrupted and runs the latest slot.
TEST_P(JobSchedulerTest, ALeaseHeldElsewhereBlocksTheJobUntilItExpires) {
  JobScheduler scheduler(*db_, clock_, log_, "alive", JobSchedulerSettings{.lease_duration = 600s});
  Calls calls;
  scheduler.add(job("export", "0 * * * *", calls.fn()));
  const Instant nine = clock_.now();
  leave_dead_run(*db_, "export", nine - 1h, nine + 2h);  // its lease until 11:00

  clock_.set("2026-11-02T09:20:00Z");
  EXPECT_THROW(scheduler.run_now("export"), JobBusy);
  clock_.set("2026-11-02T10:00:00Z");
  EXPECT_EQ(scheduler.tick(), 0);
  clock_.set("2026-11-02T10:59:59Z");
  EXPECT_EQ(scheduler.tick(), 0);
  EXPECT_EQ(calls.size(), 0u);

  clock_.set("2026-11-02T11:00:00Z");
  EXPECT_EQ(scheduler.tick(), 1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.contexts[0].scheduled_for, at("2026-11-02T11:00:00Z"));
  const auto runs = scheduler.runs("export", 10);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].instance, "alive");
  EXPECT_EQ(runs[0].outcome, "ok");
  EXPECT_EQ(runs[1].instance, "dead");
  EXPECT_EQ(runs[1].outcome, "interrupted");
  EXPECT_EQ(runs[1].finished_at, at("2026-11-02T11:00:00Z"));
  EXPECT_NE(runs[1].output.find("interrupted"), std::string::npos) << runs[1].output;

  // The lease was given back: a run by hand goes ahead at once.
  clock_.set("2026-11-02T11:10:00Z");
  EXPECT_EQ(scheduler.run_now("export"), "done");
}

// On SQLite only one server serves, so at start the leases of other holders are a crashed
// server's and go at once; a `slmhub jobs run` still running beside it keeps its own.
TEST_P(JobSchedulerTest, TheSoleServerKeepsTheLeaseOfACommandStillRunning) {
  JobScheduler scheduler(*db_, clock_, log_, "host:2",
                         JobSchedulerSettings{.lease_duration = 600s, .sole_instance = true});
  const Instant later = clock_.now() + 2h;
  db_->transact([&](Tx& tx) {
    for (const auto& [job, holder] :
         {std::pair{"export", "host:1/cli-" + std::to_string(::getpid())},
          std::pair{"prune", std::string("host:1/cli-2147483646")},  // no such process
          std::pair{"sweep", std::string("host:1")}}) {
      tx.exec("INSERT INTO job_leases (job, holder, expires_at) VALUES (?, ?, ?)",
              {std::string(job), holder, to_epoch(later)});
    }
  });
  scheduler.start();
  scheduler.stop();
  std::vector<std::string> kept;
  for (const auto& row : db_->query("SELECT job FROM job_leases ORDER BY job"))
    kept.push_back(row.text(0));
  EXPECT_EQ(kept, std::vector<std::string>{"export"});
}

// The slot a dead instance was running is not lost: once its lease is out, the slot is
// due again and runs to the end here.
TEST_P(JobSchedulerTest, TheSlotOfARunWhoseInstanceDiedRunsAgain) {
  JobScheduler scheduler(*db_, clock_, log_, "alive", JobSchedulerSettings{.lease_duration = 60s});
  Calls calls;
  scheduler.add(job("export", "0 10 * * *", calls.fn()));
  clock_.set("2026-11-02T10:00:30Z");
  const Instant ten = at("2026-11-02T10:00:00Z");
  leave_dead_run(*db_, "export", ten, ten + 60s);
  EXPECT_EQ(scheduler.tick(), 0);  // the lease is live: the run is going on elsewhere
  EXPECT_EQ(scheduler.list()[0].next_run, at("2026-11-03T10:00:00Z"));

  clock_.set("2026-11-02T10:01:00Z");
  EXPECT_EQ(scheduler.list()[0].next_run, at("2026-11-02T10:00:00Z"));  // due again
  EXPECT_EQ(scheduler.tick(), 1);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.contexts[0].scheduled_for, at("2026-11-02T10:00:00Z"));
  const auto runs = scheduler.runs("export", 10);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].outcome, "ok");
  EXPECT_EQ(runs[0].scheduled_for, at("2026-11-02T10:00:00Z"));
  EXPECT_EQ(runs[1].outcome, "interrupted");
  EXPECT_EQ(scheduler.tick(), 0);  // and only once
  EXPECT_TRUE(log_.contains("was interrupted"));
}

// A run longer than the lease keeps it: the lease is renewed while the job runs, so
// another instance does not take the job over.
TEST_P(JobSchedulerTest, ARunningJobRenewsItsLease) {
  JobScheduler first(*db_, clock_, log_, "first", JobSchedulerSettings{.lease_duration = 3s});
  JobScheduler second(*db_, clock_, log_, "second", JobSchedulerSettings{.lease_duration = 3s});
  bool busy_elsewhere = false;
  auto slow = [&](const JobContext&) {
    clock_.advance(10s);                  // well past the lease the run started with
    std::this_thread::sleep_for(1500ms);  // the renewer runs every second
    try {
      second.run_now("slow");
    } catch (const JobBusy&) {
      busy_elsewhere = true;
    }
    return std::string("done");
  };
  first.add(job("slow", "0 0 1 1 *", slow));
  second.add(job("slow", "0 0 1 1 *", [](const JobContext&) { return std::string("twice"); }));
  EXPECT_EQ(first.run_now("slow"), "done");
  EXPECT_TRUE(busy_elsewhere);
  const auto runs = first.runs("slow", 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].instance, "first");
}

TEST_P(JobSchedulerTest, ListShowsNextAndLastRuns) {
  clock_.set("2026-11-02T10:30:00Z");
  JobScheduler scheduler(*db_, clock_, log_, "a");
  Calls calls;
  scheduler.add(job("b.hourly", "0 * * * *", calls.fn("ok then")));
  scheduler.add(job("a.monthly", "0 6 1 * *", calls.fn(), "America/Chicago"));

  auto jobs = scheduler.list();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].name, "a.monthly");
  EXPECT_EQ(jobs[0].schedule, "0 6 1 * *");
  EXPECT_EQ(jobs[0].timezone, "America/Chicago");
  EXPECT_EQ(jobs[0].description, "test job a.monthly");
  EXPECT_EQ(jobs[0].next_run, at("2026-12-01T12:00:00Z"));
  EXPECT_EQ(jobs[0].last_run, std::nullopt);
  EXPECT_EQ(jobs[1].next_run, at("2026-11-02T11:00:00Z"));

  clock_.set("2026-11-02T11:00:30Z");
  EXPECT_EQ(scheduler.list()[1].next_run, at("2026-11-02T11:00:00Z"));  // due, not run yet
  scheduler.tick();
  jobs = scheduler.list();
  EXPECT_EQ(jobs[1].next_run, at("2026-11-02T12:00:00Z"));
  ASSERT_TRUE(jobs[1].last_run.has_value());
  EXPECT_EQ(jobs[1].last_run->output, "ok then");
  const Json json = to_json(jobs[1]);
  EXPECT_EQ(json["next_run"], "2026-11-02T12:00:00Z");
  EXPECT_EQ(json["last_run"]["outcome"], "ok");
  EXPECT_EQ(json["last_run"]["scheduled_for"], "2026-11-02T11:00:00Z");
  EXPECT_EQ(to_json(jobs[0])["last_run"], nullptr);
}

TEST_P(JobSchedulerTest, TheThreadRunsDueJobsAndStopsPromptly) {
  JobScheduler scheduler(*db_, clock_, log_, "a", JobSchedulerSettings{.tick_interval = 5ms});
  Calls calls;
  scheduler.add(job("hourly", "0 * * * *", calls.fn()));
  scheduler.start();
  clock_.set("2026-11-02T10:00:00Z");
  // Waits for the thread to notice, not for a deadline.
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (calls.size() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(5ms);
  }
  scheduler.stop();
  EXPECT_EQ(calls.size(), 1u);

  JobScheduler idle(*db_, clock_, log_, "b", JobSchedulerSettings{.tick_interval = 1h});
  idle.start();
  std::this_thread::sleep_for(20ms);  // let the thread reach its wait
  const auto before = std::chrono::steady_clock::now();
  idle.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
}

INSTANTIATE_TEST_SUITE_P(Engines, JobSchedulerTest, test::kBothEngines, engine_name);

}  // namespace
}  // namespace slmhub::host
