// Scheduled jobs: a 5-field cron schedule in an IANA zone. Each run is recorded; a run
// missed while the server was down runs once at start-up; a lease keeps one instance
// running a job at a time.
#pragma once

#include <functional>
#include <string>

#include "slmhub/time.hpp"

namespace slmhub {

struct JobContext {
  Instant scheduled_for;  // the cron instant this run stands for (or now, when by hand)
  Instant now;
  bool by_hand = false;
};

struct JobSpec {
  std::string name;      // unique, e.g. "availability.monthly-draft"
  std::string schedule;  // "0 6 1 * *"
  std::string timezone;  // IANA zone the schedule is read in
  std::string description;
  // Returns a one-line outcome recorded with the run; throws on failure.
  std::function<std::string(const JobContext&)> run;
  // The staff role that may run it by hand (POST /api/v1/jobs/{name}/run); admin may run
  // every job. A job that does what a role owns (billing finalises a month) names that role.
  std::string role = "operator";
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Refuses (std::invalid_argument) a duplicate name, a bad schedule or an unknown zone.
  virtual void add(JobSpec job) = 0;
};

}  // namespace slmhub
