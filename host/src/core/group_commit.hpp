// Group commit: request threads hand their writes to one writer thread, which runs every
// write queued so far in one transaction, each inside its own savepoint, and commits once.
// With synchronous=FULL every commit costs an fsync; sharing it among all waiting writers
// keeps full durability (the caller's 2xx comes after the commit) at a fraction of the cost.
// A write that throws is rolled back to its savepoint alone and its caller gets the error.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
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
  // `work` threw. Without a running writer (CLI commands) it runs in its own transaction.
  void submit(std::function<void(Tx&)> work);
  std::size_t queued() const;

 private:
  struct Item {
    std::function<void(Tx&)> work;
    std::promise<void> done;
    std::exception_ptr error;
  };
  void run();

  Store& store_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item*> queue_;
  std::thread thread_;
  bool running_ = false;
  int max_batch_ = 512;
};

}  // namespace slmhub::host
