#include "core/group_commit.hpp"

#include <vector>

namespace slmhub::host {

void GroupCommitter::start(int max_batch) {
  std::lock_guard lock(mutex_);
  if (running_) return;
  max_batch_ = max_batch > 0 ? max_batch : 1;
  running_ = true;
  thread_ = std::thread([this] { run(); });
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

std::size_t GroupCommitter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void GroupCommitter::submit(std::function<void(Tx&)> work) {
  Item item{std::move(work), {}, nullptr};
  auto done = item.done.get_future();
  {
    std::unique_lock lock(mutex_);
    if (!running_) {
      lock.unlock();
      store_.transact(item.work);
      return;
    }
    queue_.push_back(&item);
  }
  wake_.notify_one();
  done.get();
}

void GroupCommitter::run() {
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
    try {
      store_.transact([&](Tx& tx) {
        for (Item* item : batch) {
          item->error = nullptr;  // transact may retry the whole batch
          tx.exec("SAVEPOINT slmhub_write");
          try {
            item->work(tx);
            tx.exec("RELEASE SAVEPOINT slmhub_write");
          } catch (...) {
            item->error = std::current_exception();
            tx.exec("ROLLBACK TO SAVEPOINT slmhub_write");
            tx.exec("RELEASE SAVEPOINT slmhub_write");
          }
        }
      });
      for (Item* item : batch) {
        if (item->error)
          item->done.set_exception(item->error);
        else
          item->done.set_value();
      }
    } catch (...) {
      // The commit itself failed: nothing of the batch is durable, so nobody gets a 2xx.
      for (Item* item : batch) item->done.set_exception(std::current_exception());
    }
    batch.clear();
  }
}

}  // namespace slmhub::host
