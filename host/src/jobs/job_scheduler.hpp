// The job scheduler: runs the cron jobs plugins register, records every run in the store,
// catches up once (not once per slot) on a run missed while the server was down, and uses
// a renewed lease row plus a unique (job, slot) row so that several instances sharing one
// PostgreSQL database run each slot once, one instance at a time; a slot whose instance
// died mid-run is run again by another (its run is recorded as "interrupted").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "slmhub/cron.hpp"
#include "slmhub/json.hpp"
#include "slmhub/log.hpp"
#include "slmhub/scheduler.hpp"
#include "slmhub/store.hpp"

namespace slmhub::host {

struct JobSchedulerSettings {
  // How often the scheduler thread looks for due jobs (jobs.tick_ms). Slots are whole
  // minutes, so anything up to a few seconds only delays a run by that much.
  std::chrono::milliseconds tick_interval{1000};
  // How long a lease is good for without renewal. The instance running a job renews its
  // lease every third of this, so it bounds how long a job of a dead instance waits before
  // another instance runs its slot again, not how long a job may run.
  std::chrono::seconds lease_duration{60};
  // Set when no other server can use the store (the embedded SQLite store): leases left
  // by an earlier life of this server under another name are released at start(), those of
  // a command-line process still running (`slmhub jobs run`) kept.
  bool sole_instance = false;
  // Longer outputs are cut to this many bytes before they are recorded.
  std::size_t max_output_bytes = 4000;
};

// One recorded run.
struct JobRun {
  std::int64_t id = 0;
  std::string job;
  Instant scheduled_for;
  Instant started_at;
  std::optional<Instant> finished_at;
  std::string outcome;  // "running", "ok", "failed", "interrupted"
  std::string output;
  bool by_hand = false;
  std::string instance;
};

// What `slmhub jobs list` and `GET /api/v1/jobs` show about one job.
struct JobStatus {
  std::string name;
  std::string schedule;
  std::string timezone;
  std::string description;
  std::string role;  // the staff role that may run it by hand (admin may run every job)
  // The slot that will run next: a slot already due but not run yet, or the next one.
  std::optional<Instant> next_run;
  std::optional<JobRun> last_run;  // scheduled or by hand
};

Json to_json(const JobRun& run);
Json to_json(const JobStatus& status);

// run_now(): the job is running here or on another instance.
class JobBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// run_now(): the job threw; the run is recorded as failed with this message.
class JobFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class JobScheduler : public Scheduler {
 public:
  // Applies the "host.jobs" migrations. `instance` names this process in run rows and
  // leases; instances sharing a database must have different names (a lease held under
  // this instance's own name is taken to be left over from its previous life).
  JobScheduler(Store& store, const Clock& clock, Logger& log, std::string instance,
               JobSchedulerSettings settings = {});
  ~JobScheduler() override;  // stops the thread

  JobScheduler(const JobScheduler&) = delete;
  JobScheduler& operator=(const JobScheduler&) = delete;

  // Throws std::invalid_argument naming the job for an empty or duplicate name, a missing
  // run function, a malformed schedule or an unknown time zone. The first time a name is
  // ever added its registration time is stored: the job's first slot is the first one
  // after that, so a new job does not run for the past.
  void add(JobSpec job) override;
  // What add() checks of the job alone (not that its name is free), for a plugin whose
  // registrations wait to be committed: its start() fails on them, not the server's.
  static void check(const JobSpec& job);

  // Runs every job that has a due slot: the latest cron instant <= now after the job's
  // last scheduled run (or its registration); a run whose instance died (its lease ran out
  // while it was running) does not count. Several slots missed while the server was
  // down give one run, for the latest of them. Jobs run one after the other on the calling
  // thread, outside any transaction. Returns the number of runs started.
  int tick();

  // Runs `name` now, by hand (scheduled_for = now), and returns its output. Throws
  // std::out_of_range for an unknown job, JobBusy when it is running (here or on another
  // instance), JobFailed when the job throws (the run is recorded first).
  std::string run_now(const std::string& name);
  // The staff role that may run `name` by hand; std::out_of_range for an unknown job.
  std::string role(const std::string& name);
  // Deletes the records of runs that started before `before`, except a run still going and
  // each job's latest scheduled run (what catching up on missed runs reads). Returns how
  // many.
  std::int64_t prune(Instant before);

  // Every job, sorted by name.
  std::vector<JobStatus> list();
  // The latest `limit` runs of `name`, newest first. std::out_of_range for an unknown job.
  std::vector<JobRun> runs(const std::string& name, int limit);

  // The thread calls tick() every tick_interval; stop() wakes it at once and waits for a
  // job that is running.
  void start();
  void stop();

 private:
  struct Job {
    JobSpec spec;
    CronExpression cron;
    const date::time_zone* zone;
    Instant registered_at;
    bool running = false;  // in this process; guarded by mutex_
  };
  enum class Started { ran, busy, slot_taken };
  struct Outcome {
    Started started = Started::busy;
    bool ok = false;
    std::string output;
  };

  Job* find(const std::string& name);
  std::optional<Instant> due_slot(const Job& job, Instant now);
  std::optional<Instant> latest_slot(const Job& job, Instant after, Instant now) const;
  // Set by run() when the job returns, for the thread renewing its lease meanwhile.
  struct Finished {
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
  };

  Outcome run(Job& job, Instant scheduled_for, Instant now, bool by_hand);
  void renew_lease_until(const std::string& name, Finished& finished);
  std::optional<JobRun> last_run(const std::string& name);
  void loop();

  Store& store_;
  const Clock& clock_;
  Logger& log_;
  const std::string instance_;
  const JobSchedulerSettings settings_;

  std::mutex mutex_;                 // jobs_ (the map and each running flag), stopping_
  std::map<std::string, Job> jobs_;  // nodes are never erased: Job* stays valid
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;

  std::mutex tick_mutex_;  // one tick at a time
};

}  // namespace slmhub::host
