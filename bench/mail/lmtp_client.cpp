// bench_mail_lmtp: delivers the benchmark corpus to a running `slmhub serve` over LMTP
// (RFC 2033) on N concurrent connections and checks every answer, for bench/mail/run.sh.
//   bench_mail_lmtp --port P --corpus DIR [--connections 8] [--only FILE] [--server-pid PID]
//                   [--rcpt db-requests@example.org]
// Each connection says LHLO once, then per message sends MAIL FROM, RCPT TO and DATA in one
// write (PIPELINING), the dot-stuffed message after the 354, and waits for the recipient's
// reply, which the server gives only once the message is committed ("250 2.0.0 ticket
// DBR0000042"). The connections take the next message from one shared counter, in corpus
// order. A reply's subject tag [DBR@@@@@@@] becomes its parent's case number from the
// parent's 250 (a reply waits for that answer, as a person answers the auto-reply; parents are
// >= 200 messages earlier, so nobody waits in practice). Fails (exit 1) unless every message
// gets a 250 with the expected outcome: `ticket` for new mail, `reply` on the parent's ticket
// for a reply. Prints key=value lines: rate, MB/s, per-message latency from MAIL to the 250,
// the server's and the client's CPU time over the run (from /proc and getrusage) and the
// counts run.sh checks in the store.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

using namespace slmhub::bench::mail;

constexpr std::string_view kTag = "DBR@@@@@@@";

struct Delivery {
  const CorpusMessage* message = nullptr;
  std::string data;                        // dot-stuffed, ending in CRLF . CRLF
  std::size_t tag_at = std::string::npos;  // where the reply's case tag goes in `data`
  long parent = -1;                        // index into the delivery list
  // Results.
  std::string outcome, ticket, error;
  double seconds = 0;
  bool done = false;
};

std::string dot_stuff(const std::string& raw) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 64 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (line_start && c == '.') out += '.';
    if (c == '\n' && (i == 0 || raw[i - 1] != '\r')) out += '\r';  // bare LF -> CRLF
    out += c;
    line_start = c == '\n';
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  out += ".\r\n";
  return out;
}

class Connection {
 public:
  explicit Connection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Connection() { close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(std::string_view text) {
    while (!text.empty()) {
      const ssize_t n = ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("LMTP server closed the connection while sending");
      text.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  std::string line() {
    for (;;) {
      const auto lf = buffer_.find('\n');
      if (lf != std::string::npos) {
        std::string out = buffer_.substr(0, lf > 0 && buffer_[lf - 1] == '\r' ? lf - 1 : lf);
        buffer_.erase(0, lf + 1);
        return out;
      }
      char chunk[4096];
      const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) throw std::runtime_error("LMTP server closed the connection");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // A whole (possibly multi-line) reply; its last line.
  std::string reply() {
    for (;;) {
      std::string l = line();
      if (l.size() < 4 || l[3] != '-') return l;
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

struct Shared {
  std::vector<Delivery>& deliveries;
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::condition_variable answered;
  std::atomic<bool> failed{false};
  std::string rcpt;
};

void expect(const std::string& reply, const char* code, const char* what) {
  if (reply.compare(0, 3, code) != 0) {
    throw std::runtime_error(std::string(what) + " answered '" + reply + "'");
  }
}

void worker(Shared& shared, int port) {
  try {
    Connection c(port);
    expect(c.reply(), "220", "greeting");
    c.send("LHLO bench.example.org\r\n");
    expect(c.reply(), "250", "LHLO");
    for (;;) {
      if (shared.failed) return;
      const std::size_t i = shared.next.fetch_add(1);
      if (i >= shared.deliveries.size()) break;
      Delivery& d = shared.deliveries[i];
      if (d.parent >= 0) {
        const Delivery& p = shared.deliveries[static_cast<std::size_t>(d.parent)];
        std::unique_lock lock(shared.mutex);
        if (!shared.answered.wait_for(lock, std::chrono::seconds(120),
                                      [&] { return p.done || shared.failed; })) {
          throw std::runtime_error(d.message->file + ": its parent " + p.message->file +
                                   " was not answered in 120 s");
        }
        if (shared.failed) return;
        if (p.ticket.size() != kTag.size()) {
          throw std::runtime_error(d.message->file + ": parent case number '" + p.ticket +
                                   "' does not fit the tag");
        }
        if (d.tag_at != std::string::npos) d.data.replace(d.tag_at, kTag.size(), p.ticket);
      }
      const auto start = Clock::now();
      // SIZE= as Postfix's LMTP client sends it to a server that announces SIZE.
      c.send("MAIL FROM:<" + d.message->sender + "> SIZE=" + std::to_string(d.data.size()) +
             "\r\nRCPT TO:<" + shared.rcpt + ">\r\nDATA\r\n");
      expect(c.reply(), "250", "MAIL FROM");
      expect(c.reply(), "250", "RCPT TO");
      expect(c.reply(), "354", "DATA");
      c.send(d.data);
      const std::string answer = c.reply();
      const double seconds = seconds_since(start);
      expect(answer, "250", (d.message->file + " DATA").c_str());
      // "250 2.0.0 ticket DBR0000042"
      std::istringstream words(answer.substr(4));
      std::string enhanced, outcome, ticket;
      words >> enhanced >> outcome >> ticket;
      std::string error;
      if (d.message->kind == "reply") {
        const Delivery& p = shared.deliveries[static_cast<std::size_t>(d.parent)];
        if (outcome != "reply" || ticket != p.ticket) {
          error = "expected reply on " + p.ticket + ", got '" + answer + "'";
        }
      } else if (outcome != "ticket" || ticket.empty()) {
        error = "expected a new ticket, got '" + answer + "'";
      }
      {
        std::lock_guard lock(shared.mutex);
        d.outcome = outcome;
        d.ticket = ticket;
        d.seconds = seconds;
        d.error = error;
        d.done = true;
      }
      shared.answered.notify_all();
      if (!error.empty()) throw std::runtime_error(d.message->file + ": " + error);
    }
    c.send("QUIT\r\n");
    c.reply();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mail_lmtp: %s\n", e.what());
    shared.failed = true;
    shared.answered.notify_all();
  }
}

// utime + stime of a process in seconds, -1 if unknown.
double process_cpu_seconds(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  if (f.size() < 13) return -1;
  return static_cast<double>(std::stoll(f[11]) + std::stoll(f[12])) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// This process's user + system time in seconds.
double own_cpu_seconds() {
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  return static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
         static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto at = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, connections = 8;
  std::string dir, only, server_pid, rcpt = "db-requests@example.org";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port")
      port = std::stoi(v);
    else if (k == "--corpus")
      dir = v;
    else if (k == "--connections")
      connections = std::stoi(v);
    else if (k == "--only")
      only = v;
    else if (k == "--server-pid")
      server_pid = v;
    else if (k == "--rcpt")
      rcpt = v;
    else {
      std::fprintf(stderr, "bench_mail_lmtp: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (port == 0 || dir.empty()) {
    std::fprintf(stderr,
                 "usage: bench_mail_lmtp --port P --corpus DIR [--connections N] [--only FILE] "
                 "[--server-pid PID] [--rcpt ADDRESS]\n");
    return 2;
  }
  try {
    const std::vector<CorpusMessage> corpus = read_corpus(dir, true);
    std::vector<Delivery> deliveries;
    std::map<long, long> index_of;  // corpus index -> delivery index
    for (std::size_t i = 0; i < corpus.size(); ++i) {
      const CorpusMessage& m = corpus[i];
      if (only.empty() ? m.kind == "big" : m.file != only) continue;
      Delivery d;
      d.message = &m;
      d.data = dot_stuff(m.raw);
      if (m.kind == "reply") {
        const auto p = index_of.find(m.parent);
        if (p == index_of.end()) throw std::runtime_error(m.file + ": parent not delivered before");
        d.parent = p->second;
        const auto head_end = d.data.find("\r\n\r\n");
        d.tag_at = d.data.find(kTag);
        if (d.tag_at == std::string::npos || d.tag_at > head_end) {
          throw std::runtime_error(m.file + ": no case tag in the header");
        }
      }
      index_of[static_cast<long>(i)] = static_cast<long>(deliveries.size());
      deliveries.push_back(std::move(d));
    }
    if (deliveries.empty()) throw std::runtime_error("nothing to deliver");
    std::size_t bytes = 0, tickets = 0, autoreplies = 0, replies = 0;
    for (const auto& d : deliveries) {
      bytes += d.message->raw.size();
      if (d.message->kind == "reply") {
        ++replies;
      } else {
        ++tickets;
        if (d.message->kind != "auto") ++autoreplies;
      }
    }

    Shared shared{deliveries, {}, {}, {}, {}, rcpt};
    const double cpu_before = server_pid.empty() ? -1 : process_cpu_seconds(server_pid);
    const double client_before = own_cpu_seconds();
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < connections; ++t) threads.emplace_back(worker, std::ref(shared), port);
    for (auto& t : threads) t.join();
    const double seconds = seconds_since(start);
    const double cpu_after = server_pid.empty() ? -1 : process_cpu_seconds(server_pid);
    if (shared.failed) return 1;
    for (const auto& d : deliveries) {
      if (!d.done) {
        std::fprintf(stderr, "bench_mail_lmtp: %s was not delivered\n", d.message->file.c_str());
        return 1;
      }
    }
    std::vector<double> latency;
    for (const auto& d : deliveries) latency.push_back(d.seconds * 1000);
    const double client_cpu = own_cpu_seconds() - client_before;
    const double n = static_cast<double>(deliveries.size());
    std::printf("messages=%zu bytes=%zu connections=%d seconds=%.4f\n", deliveries.size(), bytes,
                connections, seconds);
    std::printf("msgs_per_s=%.1f mb_per_s=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n / seconds,
                static_cast<double>(bytes) / seconds / 1e6, percentile(latency, 0.50),
                percentile(latency, 0.99), percentile(latency, 1.0));
    std::printf("expected_tickets=%zu expected_autoreplies=%zu expected_replies=%zu\n", tickets,
                autoreplies, replies);
    if (cpu_before >= 0 && cpu_after >= 0) {
      std::printf("server_cpu_seconds=%.2f server_cpu_us_per_msg=%.0f\n", cpu_after - cpu_before,
                  (cpu_after - cpu_before) / n * 1e6);
    }
    std::printf("client_cpu_seconds=%.2f client_cpu_us_per_msg=%.0f\n", client_cpu,
                client_cpu / n * 1e6);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mail_lmtp: %s\n", e.what());
    return 1;
  }
  return 0;
}
