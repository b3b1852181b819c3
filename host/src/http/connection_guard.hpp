// Deadlines on HTTP connections, against slow clients (slow-loris). Poco serves a connection
// on one thread and bounds each socket read by a time-out, so a client that sends a byte just
// inside every time-out could hold a thread for ever, and enough of them the whole server. The
// guard gives every connection a deadline for the whole of what the client must send next:
// the TLS handshake and the first request, or after an answer the next request (its headers
// and its body). One thread watches the deadlines and shuts down the socket of a connection
// that passes its deadline; the blocked read returns and the thread is free again. While a
// handler runs, the connection has no deadline: the server, not the client, is working then.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>

namespace slmhub::host {

class ConnectionGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // `allowance`: the time a client has for what it must send next (http.request_timeout_ms).
  explicit ConnectionGuard(Clock::duration allowance);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Registers the connection served on this thread for its lifetime, with its first deadline.
  class Watch {
   public:
    Watch(ConnectionGuard& guard, int fd);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    friend class ConnectionGuard;
    ConnectionGuard& guard_;
    int fd_;                        // a descriptor of its own (dup), closed when the watch ends
    Clock::time_point deadline_{};  // Clock::time_point::max(): none
    bool cut_ = false;
  };

  // On the thread serving a connection (no-ops elsewhere, e.g. in unit tests of handlers):
  // the request has arrived and its handler starts, so the deadline is lifted; false when the
  // connection was cut first (the request must not be handled) ...
  static bool handler_started();
  // ... and the answer is sent: the client has the allowance again for its next request.
  static void answer_sent();
  // True when the guard cut this thread's connection: what was read is incomplete.
  static bool cut();
  // True when the client has closed its side of this thread's connection and everything it
  // sent has been read: a chunked body that ended there may have been cut short, since Poco
  // 1.11 reads a chunked body that stops at end of file as complete. (Over TLS the client's
  // close_notify is data to the socket, so this sees the close only once OpenSSL has read it.)
  static bool peer_closed();
  // Stopping: every connection waiting for its client is closed now, and every other one as
  // soon as its answer is sent.
  void drain();
  // Connections cut since start, for the metrics.
  std::int64_t cuts() const { return cuts_.load(); }

 private:
  void rearm(Watch& watch, Clock::time_point deadline);
  void watch_loop();

  const Clock::duration allowance_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::set<Watch*> watches_;
  bool stopping_ = false;
  bool draining_ = false;
  std::atomic<std::int64_t> cuts_{0};
  std::thread watcher_;
};

}  // namespace slmhub::host
