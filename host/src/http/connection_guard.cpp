#include "http/connection_guard.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace slmhub::host {

namespace {
// The watch of the connection this thread serves, if any.
thread_local ConnectionGuard::Watch* current = nullptr;
constexpr auto kNone = ConnectionGuard::Clock::time_point::max();
// How often deadlines are looked at: a slow client is cut at most this late.
constexpr auto kTick = std::chrono::milliseconds(200);
}  // namespace

ConnectionGuard::ConnectionGuard(Clock::duration allowance)
    : allowance_(allowance), watcher_([this] { watch_loop(); }) {}

ConnectionGuard::~ConnectionGuard() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  watcher_.join();
}

// The watch keeps its own descriptor of the socket: Poco closes the connection's descriptor
// before the watch ends, and the number may by then belong to another socket.
ConnectionGuard::Watch::Watch(ConnectionGuard& guard, int fd)
    : guard_(guard), fd_(::fcntl(fd, F_DUPFD_CLOEXEC, 0)) {
  std::lock_guard lock(guard_.mutex_);
  deadline_ = guard_.draining_ ? Clock::time_point::min() : Clock::now() + guard_.allowance_;
  guard_.watches_.insert(this);
  current = this;
}

ConnectionGuard::Watch::~Watch() {
  {
    std::lock_guard lock(guard_.mutex_);
    guard_.watches_.erase(this);
    current = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
}

void ConnectionGuard::rearm(Watch& watch, Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  watch.deadline_ = draining_ && deadline != kNone ? Clock::time_point::min() : deadline;
  if (draining_) wake_.notify_all();
}

void ConnectionGuard::drain() {
  std::lock_guard lock(mutex_);
  draining_ = true;
  for (Watch* w : watches_) {
    if (w->deadline_ != kNone) w->deadline_ = Clock::time_point::min();
  }
  wake_.notify_all();
}

bool ConnectionGuard::handler_started() {
  if (!current) return true;
  std::lock_guard lock(current->guard_.mutex_);
  if (current->cut_) return false;
  current->deadline_ = kNone;
  return true;
}

void ConnectionGuard::answer_sent() {
  if (current) current->guard_.rearm(*current, Clock::now() + current->guard_.allowance_);
}

bool ConnectionGuard::cut() {
  if (!current) return false;
  std::lock_guard lock(current->guard_.mutex_);
  return current->cut_;
}

bool ConnectionGuard::peer_closed() {
  if (!current) return false;
  char c;
  return ::recv(current->fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void ConnectionGuard::watch_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kTick);
    const auto now = Clock::now();
    for (Watch* w : watches_) {
      if (w->deadline_ > now) continue;
      // shutdown(2) of reading, not close: the blocked read (TLS or not) returns at once, and
      // an answer (408) can still be written.
      if (w->fd_ >= 0) ::shutdown(w->fd_, SHUT_RD);
      w->deadline_ = kNone;
      if (!draining_) {
        w->cut_ = true;
        ++cuts_;
      }
    }
  }
}

}  // namespace slmhub::host
