// The job scheduler (see job_scheduler.hpp).
//
// Who runs a slot is decided in one transaction: take the job's lease (insert it, or take
// over one that expired), then insert the run row. The lease keeps two instances from
// running the job at once, and a thread renews it while the job runs; the unique index on
// (job, scheduled_for) over scheduled runs keeps a slot from being run twice by live
// instances. A run left "running" without a live lease belongs to an instance that died:
// it does not count as the slot's run, and whoever takes the lease next records it as
// "interrupted" (which frees the slot in the index) and runs the slot again. So a slot
// is run to the end once; an instance paused for longer than the lease (SIGSTOP, a VM
// freeze) can find on waking that its slot was run again meanwhile: its own outcome is
// then not recorded, and jobs are written to be idempotent for that case.
#include "jobs/job_scheduler.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <exception>
#include <limits>
#include <utility>

#include "slmhub/http.hpp"

namespace slmhub::host {
namespace {

// Whether `holder` names a command-line process ("…/cli-<pid>") that still runs on this
// machine (an SQLite store is a local file, so its CLI processes are local too).
bool process_alive(const std::string& holder) {
  const auto at = holder.rfind("/cli-");
  if (at == std::string::npos) return false;
  pid_t pid = 0;
  const char* first = holder.data() + at + 5;
  const char* last = holder.data() + holder.size();
  if (std::from_chars(first, last, pid).ptr != last || pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "job runs, leases and registrations",
       "CREATE TABLE job_runs (id {{serial}}, job TEXT NOT NULL,"
       " scheduled_for BIGINT NOT NULL, started_at BIGINT NOT NULL, finished_at BIGINT,"
       " outcome TEXT NOT NULL, output TEXT NOT NULL DEFAULT '', by_hand BIGINT NOT NULL,"
       " instance TEXT NOT NULL);"
       // Partial: runs by hand may share a second with a slot or with each other.
       "CREATE UNIQUE INDEX job_runs_slot ON job_runs (job, scheduled_for) WHERE by_hand = 0;"
       "CREATE INDEX job_runs_job_id ON job_runs (job, id);"
       "CREATE TABLE job_leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL,"
       " expires_at BIGINT NOT NULL);"
       // When a job was first added: without it, a job added before a downtime and never
       // run yet would lose the slot it missed.
       "CREATE TABLE job_registrations (job TEXT PRIMARY KEY, registered_at BIGINT NOT NULL)"},
      {2, "an interrupted run frees its slot",
       "DROP INDEX job_runs_slot;"
       "CREATE UNIQUE INDEX job_runs_slot ON job_runs (job, scheduled_for)"
       " WHERE by_hand = 0 AND outcome <> 'interrupted'"},
      // Taking a lease looks for the job's runs left "running"; through (job, id) that read
      // every run the job ever had (525,600 a year for a minutely job), under the write lock.
      // The failed-runs gauge counts through it too.
      {3, "a job's running runs found without its history",
       "CREATE INDEX job_runs_outcome ON job_runs (outcome, job)"},
  };
  return list;
}

constexpr const char* kRunColumns =
    "id, job, scheduled_for, started_at, finished_at, outcome, output, by_hand, instance";

JobRun run_from_row(const Row& row) {
  JobRun run;
  run.id = row.integer(0);
  run.job = row.text(1);
  run.scheduled_for = from_epoch(row.integer(2));
  run.started_at = from_epoch(row.integer(3));
  if (auto finished = row.optional_integer(4)) run.finished_at = from_epoch(*finished);
  run.outcome = row.text(5);
  run.output = row.text(6);
  run.by_hand = row.integer(7) != 0;
  run.instance = row.text(8);
  return run;
}

std::string truncated(std::string text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  // Do not cut a UTF-8 sequence in half: step back over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "…";
  return text;
}

}  // namespace

Json to_json(const JobRun& run) {
  return {{"id", run.id},
          {"job", run.job},
          {"scheduled_for", format_instant(run.scheduled_for)},
          {"started_at", format_instant(run.started_at)},
          {"finished_at", run.finished_at ? Json(format_instant(*run.finished_at)) : Json()},
          {"outcome", run.outcome},
          {"output", run.output},
          {"by_hand", run.by_hand},
          {"instance", run.instance}};
}

Json to_json(const JobStatus& status) {
  return {{"name", status.name},
          {"schedule", status.schedule},
          {"timezone", status.timezone},
          {"description", status.description},
          {"role", status.role},
          {"next_run", status.next_run ? Json(format_instant(*status.next_run)) : Json()},
          {"last_run", status.last_run ? to_json(*status.last_run) : Json()}};
}

JobScheduler::JobScheduler(Store& store, const Clock& clock, Logger& log, std::string instance,
                           JobSchedulerSettings settings)
    : store_(store), clock_(clock), log_(log), instance_(std::move(instance)), settings_(settings) {
  if (instance_.empty()) throw std::invalid_argument("job scheduler: instance name is empty");
  if (settings_.tick_interval.count() <= 0 || settings_.lease_duration.count() <= 0) {
    throw std::invalid_argument(
        "job scheduler: the tick (jobs.tick_ms) and the lease (jobs.lease_seconds) must be > 0");
  }
  store_.migrate("host.jobs", migrations());
}

JobScheduler::~JobScheduler() { stop(); }

namespace {

// What a job alone must be: named, runnable, on a schedule in a zone that exist.
std::pair<CronExpression, const date::time_zone*> checked(const JobSpec& spec) {
  const std::string what = "job \"" + spec.name + "\"";
  if (spec.name.empty()) throw std::invalid_argument("a job needs a name");
  if (!spec.run) throw std::invalid_argument(what + " has no run function");
  const auto& roles = staff_roles();
  if (std::find(roles.begin(), roles.end(), spec.role) == roles.end())
    throw std::invalid_argument(what + ": '" + spec.role + "' is not a staff role");
  try {
    return {CronExpression::parse(spec.schedule), find_zone(spec.timezone)};
  } catch (const std::invalid_argument& e) {  // CronError, TimeError
    throw std::invalid_argument(what + ": " + e.what());
  }
}

}  // namespace

void JobScheduler::check(const JobSpec& spec) { checked(spec); }

void JobScheduler::add(JobSpec spec) {
  const std::string what = "job \"" + spec.name + "\"";
  const auto [cron, zone] = checked(spec);
  {
    std::lock_guard lock(mutex_);
    if (jobs_.count(spec.name) != 0) throw std::invalid_argument(what + " is already registered");
  }

  std::int64_t registered_at = 0;
  store_.transact([&](Tx& tx) {
    tx.exec(
        "INSERT INTO job_registrations (job, registered_at) VALUES (?, ?)"
        " ON CONFLICT (job) DO NOTHING",
        {spec.name, to_epoch(clock_.now())});
    registered_at =
        tx.query("SELECT registered_at FROM job_registrations WHERE job = ?", {spec.name})
            .at(0)
            .integer(0);
  });

  std::lock_guard lock(mutex_);
  const std::string name = spec.name;
  if (!jobs_.emplace(name, Job{std::move(spec), cron, zone, from_epoch(registered_at)}).second) {
    throw std::invalid_argument(what + " is already registered");
  }
}

JobScheduler::Job* JobScheduler::find(const std::string& name) {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(name);
  return it == jobs_.end() ? nullptr : &it->second;
}

int JobScheduler::tick() {
  std::lock_guard ticking(tick_mutex_);
  std::vector<Job*> jobs;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, job] : jobs_) jobs.push_back(&job);
  }
  int started = 0;
  for (Job* job : jobs) {
    // A stop joins the job running, not every job due after it (a tick after downtime runs
    // each missed slot in turn; systemd kills a stop that takes too long).
    if (std::lock_guard lock(mutex_); stopping_) break;
    const Instant now = clock_.now();
    const std::optional<Instant> slot = due_slot(*job, now);
    if (!slot) continue;
    if (run(*job, *slot, now, false).started == Started::ran) ++started;
  }
  return started;
}

std::optional<Instant> JobScheduler::due_slot(const Job& job, Instant now) {
  // A run still "running" counts only while some instance holds the job's lease.
  const auto rows = store_.query(
      "SELECT MAX(scheduled_for) FROM job_runs WHERE job = ? AND by_hand = 0"
      " AND outcome <> 'interrupted' AND (outcome <> 'running' OR EXISTS (SELECT 1 FROM"
      " job_leases WHERE job_leases.job = job_runs.job AND job_leases.expires_at > ?))",
      {job.spec.name, to_epoch(now)});
  const std::optional<std::int64_t> last = rows.at(0).optional_integer(0);
  return latest_slot(job, last ? from_epoch(*last) : job.registered_at, now);
}

std::optional<Instant> JobScheduler::latest_slot(const Job& job, Instant after, Instant now) const {
  if (now <= after) return std::nullopt;
  // Walking slot by slot from `after` could take a long time (a minutely job after months
  // down), so look back from `now` over growing windows and walk only the first window
  // that holds a slot; the last window reaches back to `after`.
  using std::chrono::days;
  using std::chrono::hours;
  const std::chrono::seconds windows[] = {hours(2), days(3), days(35), days(400), days(2000)};
  for (std::size_t i = 0; i <= std::size(windows); ++i) {
    Instant from = after;
    if (i < std::size(windows) && now - windows[i] > after) from = now - windows[i];
    std::optional<Instant> next = job.cron.next_after(from, job.zone);
    if (!next || *next > now) {
      if (from == after) return std::nullopt;
      continue;
    }
    Instant latest = *next;
    while ((next = job.cron.next_after(latest, job.zone)) && *next <= now) latest = *next;
    return latest;
  }
  return std::nullopt;
}

JobScheduler::Outcome JobScheduler::run(Job& job, Instant scheduled_for, Instant now,
                                        bool by_hand) {
  const std::string& name = job.spec.name;
  {
    std::lock_guard lock(mutex_);
    if (job.running) return {};
    job.running = true;
  }
  struct NotRunning {
    std::mutex& mutex;
    Job& job;
    ~NotRunning() {
      std::lock_guard lock(mutex);
      job.running = false;
    }
  } not_running{mutex_, job};

  Outcome outcome;
  std::int64_t run_id = 0;
  std::vector<std::string> interrupted;  // what the takeover found, for the log
  store_.transact([&](Tx& tx) {
    outcome.started = Started::busy;  // transact may run this more than once
    interrupted.clear();
    const std::int64_t leased = tx.exec(
        "INSERT INTO job_leases (job, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (job) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE job_leases.expires_at <= ? OR job_leases.holder = ?",
        {name, instance_, to_epoch(now + settings_.lease_duration), to_epoch(now), instance_});
    if (leased != 1) return;
    // With the lease ours nobody else can be running the job: a "running" run was left by
    // an instance that died (or, under our own name, by our previous life).
    for (const auto& row : tx.query("SELECT id, instance, scheduled_for FROM job_runs"
                                    " WHERE job = ? AND outcome = 'running'",
                                    {name})) {
      interrupted.push_back("run " + std::to_string(row.integer(0)) + " for " +
                            format_instant(from_epoch(row.integer(2))) + " on instance \"" +
                            row.text(1) + "\"");
    }
    tx.exec(
        "UPDATE job_runs SET outcome = 'interrupted', finished_at = ?,"
        " output = 'interrupted: the instance running it stopped before it finished'"
        " WHERE job = ? AND outcome = 'running'",
        {to_epoch(now), name});
    const auto inserted = tx.query(
        std::string("INSERT INTO job_runs (job, scheduled_for, started_at, outcome, by_hand,"
                    " instance) VALUES (?, ?, ?, 'running', ?, ?)") +
            (by_hand ? ""
                     : " ON CONFLICT (job, scheduled_for) WHERE by_hand = 0 AND"
                       " outcome <> 'interrupted' DO NOTHING") +
            " RETURNING id",
        {name, to_epoch(scheduled_for), to_epoch(now), std::int64_t{by_hand ? 1 : 0}, instance_});
    if (inserted.empty()) {
      // Another instance ran this slot already; give the lease back.
      tx.exec("DELETE FROM job_leases WHERE job = ? AND holder = ?", {name, instance_});
      outcome.started = Started::slot_taken;
      return;
    }
    run_id = inserted[0].integer(0);
    outcome.started = Started::ran;
  });
  for (const auto& what : interrupted) {
    log_.warning("job \"" + name + "\": " + what +
                 " was interrupted (its instance stopped before it finished)");
  }
  if (outcome.started != Started::ran) return outcome;

  log_.info("job \"" + name + "\" started for " + format_instant(scheduled_for) +
            (by_hand ? " (by hand)" : ""));
  {
    Finished finished;
    std::thread renewer([&] { renew_lease_until(name, finished); });
    try {
      outcome.output = job.spec.run(JobContext{scheduled_for, now, by_hand});
      outcome.ok = true;
    } catch (const std::exception& e) {
      outcome.output = e.what();
    } catch (...) {
      outcome.output = "unknown exception";
    }
    {
      std::lock_guard lock(finished.mutex);
      finished.done = true;
    }
    finished.changed.notify_all();
    renewer.join();
  }
  outcome.output = truncated(std::move(outcome.output), settings_.max_output_bytes);
  const Instant finished = clock_.now();
  std::int64_t recorded = 0;
  store_.transact([&](Tx& tx) {
    // Only while the run is still ours: another instance may have taken it over.
    recorded = tx.exec(
        "UPDATE job_runs SET finished_at = ?, outcome = ?, output = ?"
        " WHERE id = ? AND outcome = 'running'",
        {to_epoch(finished), std::string(outcome.ok ? "ok" : "failed"), outcome.output, run_id});
    tx.exec("DELETE FROM job_leases WHERE job = ? AND holder = ?", {name, instance_});
  });
  if (recorded == 0) {
    log_.error("job \"" + name + "\" finished after its lease ran out and another instance " +
               "took its run " + std::to_string(run_id) +
               " over; this outcome is not recorded: " + outcome.output);
  } else if (outcome.ok) {
    log_.info("job \"" + name + "\" finished: " + outcome.output);
  } else {
    log_.error("job \"" + name + "\" failed: " + outcome.output);
  }
  return outcome;
}

void JobScheduler::renew_lease_until(const std::string& name, Finished& finished) {
  const auto every = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(1),
      std::chrono::duration_cast<std::chrono::milliseconds>(settings_.lease_duration) / 3);
  bool lost = false;
  std::unique_lock lock(finished.mutex);
  while (!finished.changed.wait_for(lock, every, [&] { return finished.done; })) {
    lock.unlock();
    try {
      std::int64_t renewed = 0;
      store_.transact([&](Tx& tx) {
        renewed = tx.exec("UPDATE job_leases SET expires_at = ? WHERE job = ? AND holder = ?",
                          {to_epoch(clock_.now() + settings_.lease_duration), name, instance_});
      });
      if (renewed == 0 && !lost) {
        lost = true;
        log_.error("job \"" + name + "\" lost its lease while running (this instance was " +
                   "paused or cut off from the store for longer than jobs.lease_seconds); " +
                   "another instance may run its slot again");
      }
    } catch (const std::exception& e) {
      log_.warning("job \"" + name + "\": could not renew its lease (" + e.what() +
                   "); trying again");
    }
    lock.lock();
  }
}

std::int64_t JobScheduler::prune(Instant before) {
  std::int64_t deleted = 0;
  store_.transact([&](Tx& tx) {
    // The run kept per job is the one due_slot() reads: its latest finished scheduled run.
    deleted = tx.exec(
        "DELETE FROM job_runs WHERE started_at < ? AND outcome <> 'running' AND scheduled_for <"
        " COALESCE((SELECT MAX(k.scheduled_for) FROM job_runs k WHERE k.job = job_runs.job"
        " AND k.by_hand = 0 AND k.outcome NOT IN ('interrupted', 'running')), ?)",
        {to_epoch(before), std::numeric_limits<std::int64_t>::max()});
  });
  return deleted;
}

std::string JobScheduler::run_now(const std::string& name) {
  Job* job = find(name);
  if (!job) throw std::out_of_range("job \"" + name + "\" is not registered");
  const Instant now = clock_.now();
  Outcome outcome = run(*job, now, now, true);
  if (outcome.started != Started::ran) {
    throw JobBusy("job \"" + name + "\" is running already (here or on another instance)");
  }
  if (!outcome.ok) throw JobFailed("job \"" + name + "\" failed: " + outcome.output);
  return outcome.output;
}

std::string JobScheduler::role(const std::string& name) {
  Job* job = find(name);
  if (!job) throw std::out_of_range("job \"" + name + "\" is not registered");
  return job->spec.role;
}

std::optional<JobRun> JobScheduler::last_run(const std::string& name) {
  const auto rows = store_.query(std::string("SELECT ") + kRunColumns +
                                     " FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT 1",
                                 {name});
  if (rows.empty()) return std::nullopt;
  return run_from_row(rows[0]);
}

std::vector<JobStatus> JobScheduler::list() {
  std::vector<Job*> jobs;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, job] : jobs_) jobs.push_back(&job);
  }
  const Instant now = clock_.now();
  std::vector<JobStatus> out;
  for (const Job* job : jobs) {
    JobStatus status;
    status.name = job->spec.name;
    status.schedule = job->spec.schedule;
    status.timezone = job->spec.timezone;
    status.description = job->spec.description;
    status.role = job->spec.role;
    status.next_run = due_slot(*job, now);
    if (!status.next_run) status.next_run = job->cron.next_after(now, job->zone);
    status.last_run = last_run(job->spec.name);
    out.push_back(std::move(status));
  }
  return out;
}

std::vector<JobRun> JobScheduler::runs(const std::string& name, int limit) {
  if (!find(name)) throw std::out_of_range("job \"" + name + "\" is not registered");
  if (limit < 1 || limit > 1000) {
    throw std::invalid_argument("job runs limit " + std::to_string(limit) +
                                " is out of range; allowed: 1 to 1000");
  }
  std::vector<JobRun> out;
  for (const auto& row : store_.query(std::string("SELECT ") + kRunColumns +
                                          " FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT ?",
                                      {name, std::int64_t{limit}})) {
    out.push_back(run_from_row(row));
  }
  return out;
}

void JobScheduler::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  if (settings_.sole_instance) {
    // Leases under another name are a crashed server's, except those of a `slmhub jobs run`
    // still running beside this one ("<instance>/cli-<pid>"): taken, its job would run twice.
    store_.transact([&](Tx& tx) {
      for (const auto& row :
           tx.query("SELECT DISTINCT holder FROM job_leases WHERE holder <> ?", {instance_})) {
        const std::string holder = row.text(0);
        if (!process_alive(holder)) tx.exec("DELETE FROM job_leases WHERE holder = ?", {holder});
      }
    });
  }
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void JobScheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JobScheduler::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      tick();
    } catch (const std::exception& e) {
      log_.error(std::string("job scheduler: tick failed: ") + e.what());
    }
    lock.lock();
    wake_.wait_for(lock, settings_.tick_interval, [this] { return stopping_; });
  }
}

}  // namespace slmhub::host
