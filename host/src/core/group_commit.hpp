// Group commit: request threads hand their writes to one writer thread, which runs every
// write queued so far in one transaction and commits once.
// With synchronous=FULL every commit costs an fsync; sharing it among all waiting writers
// keeps full durability (the caller's 2xx comes after the commit) at a fraction of the cost.
// When a write throws, the batch is rolled back and each write retried in a transaction of
// its own, so only the failing write's caller gets an error.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "slmhub/store.hpp"

namespace slmhub::host {

class GroupCommitter {
 public:
  explicit GroupCommitter(Store& store) : store_(store) {}
  ~GroupCommitter() { stop(); }

  void start(int max_batch);
  void stop();
  // Runs `work` in a committed transaction and returns after the commit; rethrows what
  // `work` threw. `work` may run more than once (a batch in which a write threw is retried
  // write by write), so it must have no effects outside the transaction but the caller's own
  // variables. A batch whose transaction failed outside the writes (a commit's outcome lost
  // with its connection) is not run again: every caller gets that error. Without a running
  // writer (CLI commands) it runs in its own transaction.
  void submit(std::function<void(Tx&)> work);
  std::size_t queued() const;
  // Totals since start, for /metrics: commits, writes committed, time spent committing.
  struct Stats {
    std::int64_t batches = 0;
    std::int64_t writes = 0;
    std::int64_t commit_micros = 0;
  };
  Stats stats() const;

 private:
  struct Item {
    std::function<void(Tx&)> work;
    std::exception_ptr error;
  };
  // The writes queued between two commits. Each group has its own condition variable, so a
  // commit wakes exactly its own callers: with one shared one, every commit also woke the
  // callers already queued for the next group, only for them to sleep again, and on this
  // kind of machine a context switch costs more than the write.
  struct Group {
    std::vector<Item*> items;
    std::condition_variable committed_cv;
    bool committed = false;
  };
  void run();
  void commit(Group& group);

  Store& store_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;               // the writer: a group is waiting
  std::deque<std::shared_ptr<Group>> groups_;  // front: next to commit; back: open for writes
  std::thread thread_;
  bool running_ = false;
  std::size_t max_batch_ = 512;
  Stats stats_;
};

}  // namespace slmhub::host
