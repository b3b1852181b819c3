// The host's store: slmhub::Store over SQLite or PostgreSQL, with a connection pool,
// retried transactions and per-owner migrations. `open(db.url)` is the only way in.
//
// Poco::Data opens and owns every connection (its SQLite and PostgreSQL connectors);
// statements run on the connection's native handle. Poco 1.11's statement layer does not
// fit this contract: its SQLite connector types a result column by the declared type, so
// COUNT(*) or SUM() come back as text; its PostgreSQL connector reads NUMERIC as double,
// hides the SQLSTATE we need to recognise a serialization failure, and spends four round
// trips on every statement (prepare, describe, execute, deallocate). Here each connection
// keeps its prepared statements, so a statement seen before costs one call to the engine.
//
// Transactions: SQLite writers are serialized in-process and start with BEGIN IMMEDIATE
// (no lock upgrade, hence no upgrade deadlock); PostgreSQL transactions are SERIALIZABLE,
// so code that reads then writes behaves the same on both engines. A statement that fails
// inside a transaction dooms it on both engines (PostgreSQL would refuse every later
// statement anyway): the work function should let the error propagate.
//
// Nested `transact` on the same thread throws std::logic_error (pass the outer Tx& down
// instead); `query` called on a thread inside `transact` runs in that transaction, so it
// sees the transaction's own writes and cannot starve the pool. A Tx is used only by the
// thread running its work function and only until that function returns.
//
// Values: integer columns, COUNT/SUM/MAX, booleans (1/0) and whole NUMERIC or floating
// results come back as int64 on both engines; text, and numbers with a fraction in the
// engine's notation, as string; {{blob}} bytes as string; NULL as monostate.
// Portability guards: SQLite refuses "double-quoted" string literals (an identifier in
// PostgreSQL); `?` is always a placeholder, so PostgreSQL's jsonb `?` operator is not
// available (use jsonb_exists()).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slmhub/store.hpp"

namespace slmhub::host {

class Database : public slmhub::Store {
 public:
  struct Options {
    std::size_t max_connections = 16;
    // How long SQLite waits on another process's lock before reporting busy.
    int busy_timeout_ms = 5000;
    // How long a caller waits for a free pooled connection.
    int acquire_timeout_ms = 30000;
    // Attempts of a transaction that keeps meeting busy / serialization failures; the
    // backoff between attempts grows from 2 ms to 256 ms, with jitter.
    int max_attempts = 20;
  };

  // url: `sqlite:PATH` (PATH relative to the working directory or absolute; missing
  // directories are created; `sqlite::memory:` and `sqlite://` are refused) or
  // `postgresql://user[:password]@host[:port]/dbname[?k=v&...]` (also `postgres://`) or
  // `postgresql:` followed by a libpq key=value string. Throws std::runtime_error naming the URL
  // (password masked) and the reason.
  static std::unique_ptr<Database> open(const std::string& url);
  static std::unique_ptr<Database> open(const std::string& url, const Options& options);

  ~Database() override;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Versions must be 1..n in order; a gap, an empty description or a version already
  // applied with another description is an error naming the owner and the version.
  // Each missing migration runs in its own transaction together with its
  // schema_migrations row. In a migration, `{{serial}}` and `{{blob}}` expand per engine.
  void migrate(std::string_view owner, const std::vector<Migration>& migrations) override;
  // The same, calling `before_each` with each migration it is about to apply.
  void migrate(std::string_view owner, const std::vector<Migration>& migrations,
               const std::function<void(const Migration&)>& before_each);
  // When busy / serialization failures outlast Options::max_attempts, throws
  // slmhub::Problem 503 (a std::runtime_error) so a request handler answers "try later".
  void transact(const std::function<void(Tx&)>& work) override;
  // As transact(), for bookkeeping whose loss could only repeat work that is safe to
  // repeat (the outbox's "sent"): it commits without waiting for the disk. A process that
  // dies loses nothing committed; a power failure may lose the last such commits, never
  // one made before a transact() that committed after them. SQLite: synchronous=NORMAL for
  // this transaction (the WAL is synced by the next full commit); PostgreSQL:
  // synchronous_commit off for it.
  void transact_unsynced(const std::function<void(Tx&)>& work);
  // Outside a transaction: one statement in autocommit, retried like a transaction.
  std::vector<Row> query(std::string_view sql, const Params& params = {}) override;
  Dialect dialect() const override { return dialect_; }

  // owner -> highest applied version, sorted by owner (for `slmhub migrate`).
  std::vector<std::pair<std::string, int>> applied_versions();
  // Every migration list migrate() was given since open, in call order: what makes this
  // store's schema, so `slmhub migrate --to` can build the same one elsewhere.
  std::vector<std::pair<std::string, std::vector<Migration>>> migrations_seen() const;

  // The URL with any password replaced by ***, for logs and messages.
  const std::string& display_url() const { return display_url_; }

  // Attempts that were rolled back and retried since open (exported as a metric).
  std::uint64_t retry_count() const { return retries_.load(std::memory_order_relaxed); }

  // Defined in database.cpp: the connection pool and the Tx handed to work functions.
  class Pool;
  class Transaction;
  // SQLite: the in-process write lock, and a thread that copies the WAL into the database
  // off the writers' path.
  class Checkpointer;

 private:
  enum class Attempt { done, retry };
  struct TxMode {
    // False only for migrations, which take an advisory lock first and must see what the
    // lock holder committed (a SERIALIZABLE snapshot taken before the lock would not).
    bool serializable = true;
    bool synced = true;  // false: transact_unsynced
  };

  Database(Dialect dialect, std::string display_url, Options options,
           std::unique_ptr<Checkpointer> checkpointer, std::unique_ptr<Pool> pool);

  // Runs `body` in a transaction with bounded retries.
  void run_transaction(const std::function<void(Transaction&)>& body, TxMode mode);
  Attempt try_transaction(const std::function<void(Transaction&)>& body, TxMode mode, int attempt);
  [[noreturn]] void give_up(const std::exception& last, int attempts) const;
  void backoff(int attempt);
  void ensure_migrations_table();
  void apply_migration(std::string_view owner, const Migration& migration, const std::string& sql);

  Dialect dialect_;
  std::string display_url_;
  Options options_;
  // Before the pool: its connections call it after each commit, so it outlives them. Null
  // for PostgreSQL.
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Pool> pool_;
  std::atomic<std::uint64_t> retries_{0};
  mutable std::mutex seen_mutex_;
  std::vector<std::pair<std::string, std::vector<Migration>>> seen_;
};

// The SQL scanner behind the PostgreSQL dialect, exposed for tests. Both skip quoted
// strings ('..', E'..', "..", $tag$..$tag$) and comments.
//
// Replaces each `?` placeholder with $1, $2, ...; `count` receives how many there were.
std::string to_postgres_placeholders(std::string_view sql, int& count);
// Splits a script at `;` into statements; empty and whitespace-only pieces are dropped.
std::vector<std::string> split_statements(std::string_view script);

}  // namespace slmhub::host
