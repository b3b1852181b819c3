#include "core/group_commit.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <vector>

namespace slmhub::host {

void GroupCommitter::start(int max_batch) {
  std::lock_guard lock(mutex_);
  if (running_) return;
  max_batch_ = max_batch > 0 ? max_batch : 1;
  running_ = true;
  thread_ = std::thread([this] { run(); });
  // Named so `top -H` and profilers show the writer apart from the request threads.
  pthread_setname_np(thread_.native_handle(), "slmhub-writer");
}

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

GroupCommitter::Stats GroupCommitter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::size_t GroupCommitter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void GroupCommitter::submit(std::function<void(Tx&)> work) {
  Item item{std::move(work), false, nullptr};
  std::unique_lock lock(mutex_);
  if (!running_) {
    lock.unlock();
    store_.transact(item.work);
    return;
  }
  queue_.push_back(&item);
  wake_.notify_one();
  finished_.wait(lock, [&] { return item.done; });
  if (item.error) std::rethrow_exception(item.error);
}

void GroupCommitter::run() {
  // Every durable write waits for this one thread, so under load it must not queue for a
  // core behind the request threads feeding it. Raising its priority needs CAP_SYS_NICE;
  // without it the writer simply runs at the normal priority.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -10);
  std::vector<Item*> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || !running_; });
      // Drain what is queued even when stopping: those callers are waiting for an answer.
      if (queue_.empty() && !running_) return;
      while (!queue_.empty() && static_cast<int>(batch.size()) < max_batch_) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    auto started = std::chrono::steady_clock::now();
    // Fast path: the whole batch in one transaction. Writes rarely fail (a conflict, a bad
    // reference), and a failed statement dooms the transaction on both engines anyway, so
    // when anything in the batch throws, the batch is rolled back and each write is then
    // run in a transaction of its own: a failing write fails alone, the others commit.
    bool committed = false;
    try {
      store_.transact([&](Tx& tx) {
        for (Item* item : batch) item->work(tx);
      });
      committed = true;
    } catch (...) {
    }
    if (!committed) {
      for (Item* item : batch) {
        try {
          store_.transact(item->work);
        } catch (...) {
          item->error = std::current_exception();
        }
      }
    }
    {
      // One wake-up call for the whole batch: per-caller wake-ups cost the single writer
      // a syscall each, which was a large share of its time.
      std::lock_guard lock(mutex_);
      for (Item* item : batch) item->done = true;
      ++stats_.batches;
      stats_.writes += static_cast<std::int64_t>(batch.size());
      stats_.commit_micros += std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - started)
                                  .count();
    }
    finished_.notify_all();
    batch.clear();
  }
}

}  // namespace slmhub::host
