#include "core/group_commit.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

namespace slmhub::host {

void GroupCommitter::start(int max_batch) {
  std::lock_guard lock(mutex_);
  if (running_) return;
  max_batch_ = max_batch > 0 ? static_cast<std::size_t>(max_batch) : 1;
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
  std::size_t n = 0;
  for (const auto& group : groups_) n += group->items.size();
  return n;
}

void GroupCommitter::submit(std::function<void(Tx&)> work) {
  Item item{std::move(work), nullptr};
  std::unique_lock lock(mutex_);
  if (!running_) {
    lock.unlock();
    store_.transact(item.work);
    return;
  }
  if (groups_.empty() || groups_.back()->items.size() >= max_batch_) {
    groups_.push_back(std::make_shared<Group>());
  }
  const std::shared_ptr<Group> group = groups_.back();
  group->items.push_back(&item);
  wake_.notify_one();
  group->committed_cv.wait(lock, [&] { return group->committed; });
  if (item.error) std::rethrow_exception(item.error);
}

void GroupCommitter::run() {
  // Every durable write waits for this one thread, so under load it must not queue for a
  // core behind the request threads feeding it. Raising its priority needs CAP_SYS_NICE;
  // without it the writer simply runs at the normal priority.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -10);
  for (;;) {
    std::shared_ptr<Group> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !groups_.empty() || !running_; });
      // Drain what is queued even when stopping: those callers are waiting for an answer.
      if (groups_.empty()) return;
      group = std::move(groups_.front());
      groups_.pop_front();
    }
    const auto started = std::chrono::steady_clock::now();
    commit(*group);
    {
      std::lock_guard lock(mutex_);
      group->committed = true;
      ++stats_.batches;
      stats_.writes += static_cast<std::int64_t>(group->items.size());
      stats_.commit_micros += std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - started)
                                  .count();
    }
    group->committed_cv.notify_all();
  }
}

void GroupCommitter::commit(Group& group) {
  // Fast path: the whole group in one transaction. Writes rarely fail (a conflict, a bad
  // reference), and a failed statement dooms the transaction on both engines anyway, so
  // when anything in the group throws, it is rolled back and each write is then run in a
  // transaction of its own: a failing write fails alone, the others commit.
  bool work_threw = false;
  try {
    store_.transact([&](Tx& tx) {
      work_threw = false;  // a retried transaction runs every write again
      for (Item* item : group.items) {
        try {
          item->work(tx);
        } catch (...) {
          work_threw = true;
          throw;
        }
      }
    });
    return;
  } catch (...) {
    if (!work_threw) {
      // The transaction failed around the writes, not in them: a COMMIT whose answer was
      // lost with its connection (PostgreSQL) may have committed them all. Running each
      // again could apply it twice (a second ticket, a second message), so every caller
      // gets the error, as transact() would give it to a caller alone.
      const std::exception_ptr error = std::current_exception();
      for (Item* item : group.items) item->error = error;
      return;
    }
  }
  for (Item* item : group.items) {
    try {
      store_.transact(item->work);
    } catch (...) {
      item->error = std::current_exception();
    }
  }
}

}  // namespace slmhub::host
