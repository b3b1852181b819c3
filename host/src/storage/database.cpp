#include "storage/database.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/PostgreSQL/SessionImpl.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "slmhub/errors.hpp"
#include "storage/page_cache.hpp"
#include "storage/wal_writes.hpp"

namespace slmhub::host {
namespace {

// SQLite's page buffers come from one region mapped at start (storage/page_cache.hpp): the
// writer's 32 MiB cache (cache_size below) and some for the readers' short-lived ones.
constexpr std::size_t kPageCacheRegionBytes = std::size_t{40} << 20;

// SQLite counts every allocation it makes, for sqlite3_memory_used(), under one mutex of the
// whole process: every statement of every connection takes it several times. slmhub reads
// none of those counters (the page cache's are kept either way). Like the page cache region,
// this must come before SQLite initializes; afterwards SQLite refuses it and keeps counting.
void turn_off_memory_statistics() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

// PostgreSQL type OIDs (server/catalog/pg_type.h is not part of libpq-dev).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// Beyond this many cached statements a connection starts over, so SQL built on the fly
// (IN lists of varying length) cannot grow the cache without bound.
constexpr std::size_t kMaxCachedStatements = 256;
constexpr std::size_t kSqlShownChars = 80;
// Any constant works as long as every slmhub instance uses the same one.
constexpr const char* kMigrationLockSql = "SELECT pg_advisory_xact_lock(7236837813432795137)";

constexpr const char* kMigrationsTableSql =
    "CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version BIGINT NOT "
    "NULL, description TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (owner, "
    "version))";

// ---------------------------------------------------------------------------------------
// Errors

// An error reported by the engine for one statement. `retryable` marks a busy database, a
// serialization failure or a deadlock: running the whole transaction again may succeed.
class EngineError : public std::runtime_error {
 public:
  EngineError(const std::string& what, bool retryable)
      : std::runtime_error(what), retryable_(retryable) {}
  bool retryable() const { return retryable_; }

 private:
  bool retryable_;
};

// The SQL as a reader recognises it in a log line: whitespace collapsed, at most 80
// characters (counted in UTF-8 code points, never cutting one in half).
std::string sql_excerpt(std::string_view sql) {
  std::string out;
  std::size_t chars = 0;
  bool space = false;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const auto c = static_cast<unsigned char>(sql[i]);
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    const bool starts_char = (c & 0xC0) != 0x80;
    if (starts_char) {
      if (chars + (space ? 1 : 0) >= kSqlShownChars) return out + "...";
      if (space) {
        out += ' ';
        ++chars;
      }
      ++chars;
    }
    space = false;
    out += static_cast<char>(c);
  }
  return out;
}

// libpq and Poco report over several lines; our errors are one line (log lines, stderr).
std::string one_line(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty() && out.back() != ' ') out += ' ';
    pending_space = false;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

[[noreturn]] void throw_statement_error(std::string_view sql, const std::string& message,
                                        bool retryable) {
  throw EngineError(message + " (in SQL \"" + sql_excerpt(sql) + "\")", retryable);
}

// ---------------------------------------------------------------------------------------
// Values

// Numbers the engine computes as floating point or NUMERIC (AVG, SUM over NUMERIC,
// arithmetic with a float) become int64 when they are whole, so `integer()` works the
// same on both engines; anything else stays text in the engine's notation.
Value whole_or_text(double number, std::string text) {
  if (std::isfinite(number) && number == std::trunc(number) && number >= -9.2e18 &&
      number <= 9.2e18) {
    return static_cast<std::int64_t>(number);
  }
  return text;
}

Value from_double(double number) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, number);
  return whole_or_text(number, std::string(buffer, result.ptr));
}

std::optional<std::int64_t> parse_int64(std::string_view text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (result.ec != std::errc() || result.ptr != end) return std::nullopt;
  return value;
}

// NUMERIC text is `-?digits(.digits)?` (or NaN / Infinity); a zero fraction is whole.
Value from_numeric(std::string_view text) {
  const auto dot = text.find('.');
  const auto whole = text.substr(0, dot);
  const bool zero_fraction = dot == std::string_view::npos ||
                             text.find_first_not_of('0', dot + 1) == std::string_view::npos;
  if (zero_fraction) {
    if (auto value = parse_int64(whole)) return *value;
  }
  return std::string(text);
}

// ---------------------------------------------------------------------------------------
// SQL scanning (PostgreSQL dialect)

bool is_ident_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_' || c == '$' || u >= 0x80;
}

// Calls on_char(i) for every character outside literals and comments; returns normally
// also for an unterminated literal (the engine reports that one better than we could).
template <typename OnChar>
void scan_sql(std::string_view sql, OnChar&& on_char) {
  const std::size_t n = sql.size();
  std::size_t i = 0;
  while (i < n) {
    const char c = sql[i];
    if (c == '\'') {
      // E'...' strings take backslash escapes; standard strings do not.
      const bool escapes = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                           (i < 2 || !is_ident_char(sql[i - 2]));
      for (++i; i < n; ++i) {
        if (escapes && sql[i] == '\\') {
          ++i;
        } else if (sql[i] == '\'') {
          if (i + 1 < n && sql[i + 1] == '\'') {
            ++i;
          } else {
            break;
          }
        }
      }
      ++i;
    } else if (c == '"') {
      for (++i; i < n; ++i) {
        if (sql[i] == '"') {
          if (i + 1 < n && sql[i + 1] == '"') {
            ++i;
          } else {
            break;
          }
        }
      }
      ++i;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;  // PostgreSQL block comments nest
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '$' && (i == 0 || !is_ident_char(sql[i - 1]))) {
      // $tag$ ... $tag$ (tag may be empty); `$1` is a parameter, not a quote.
      std::size_t j = i + 1;
      while (j < n && sql[j] != '$' && is_ident_char(sql[j]) &&
             !(j == i + 1 && std::isdigit(static_cast<unsigned char>(sql[j])) != 0)) {
        ++j;
      }
      if (j < n && sql[j] == '$') {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const auto close = sql.find(tag, j + 1);
        i = close == std::string_view::npos ? n : close + tag.size();
      } else {
        on_char(i);
        ++i;
      }
    } else {
      on_char(i);
      ++i;
    }
  }
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// ---------------------------------------------------------------------------------------
// URLs

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Hides the password of `scheme://user:password@host` and of `password=...` in libpq
// key=value strings, so the URL can appear in logs and error messages.
std::string mask_password(std::string_view url) {
  std::string out(url);
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    // The last '@' of the authority: an unencoded '@' in a password must not leak the rest.
    const auto path = out.find('/', scheme + 3);
    const auto at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
    const auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
    // libpq also takes ?password=... (and ?sslpassword=...) among the URI's parameters.
    if (const auto query = out.find('?', scheme + 3); query != std::string::npos) {
      for (auto key = out.find("password=", query); key != std::string::npos;
           key = out.find("password=", key + 1)) {
        const auto value = key + 9;
        const auto end = std::min(out.find('&', value), out.size());
        out.replace(value, end - value, "***");
      }
    }
    return out;
  }
  for (auto key = out.find("password"); key != std::string::npos;
       key = out.find("password", key + 1)) {
    auto i = key + 8;
    while (i < out.size() && out[i] == ' ') ++i;
    if (i >= out.size() || out[i] != '=') continue;
    ++i;
    while (i < out.size() && out[i] == ' ') ++i;
    auto end = i;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      end = std::min(end + 1, out.size());
    } else {
      while (end < out.size() && out[end] != ' ') ++end;
    }
    out.replace(i, end - i, "***");
  }
  return out;
}

std::string percent_decode(std::string_view text, const std::string& display_url) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      int value = 0;
      const auto* begin = text.data() + i + 1;
      if (i + 2 >= text.size() || std::from_chars(begin, begin + 2, value, 16).ptr != begin + 2) {
        throw std::runtime_error("bad database URL " + display_url +
                                 ": '%' must be followed by two hex digits");
      }
      out += static_cast<char>(value);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string conninfo_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// postgresql://user:password@host:port/dbname?k=v -> libpq key=value text. Poco's
// PostgreSQL session appends `connect_timeout=` to what it gets, which a URI would not
// survive; the key=value form does.
std::string postgres_conninfo(std::string_view url, const std::string& display_url) {
  std::string_view rest = url.substr(url.find("://") + 3);
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    if (slash + 1 < rest.size()) {
      pairs.emplace_back("dbname", percent_decode(rest.substr(slash + 1), display_url));
    }
  }
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    pairs.emplace_back("user", percent_decode(userinfo.substr(0, colon), display_url));
    if (colon != std::string_view::npos) {
      pairs.emplace_back("password", percent_decode(userinfo.substr(colon + 1), display_url));
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (starts_with(authority, "[")) {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw std::runtime_error("bad database URL " + display_url + ": unclosed '[' in host");
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!host.empty()) pairs.emplace_back("host", percent_decode(host, display_url));
  if (!port.empty()) {
    if (!parse_int64(port)) {
      throw std::runtime_error("bad database URL " + display_url + ": port '" + std::string(port) +
                               "' is not a number");
    }
    pairs.emplace_back("port", std::string(port));
  }
  bool has_application_name = false;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw std::runtime_error("bad database URL " + display_url + ": query item '" +
                               std::string(item) + "' is not key=value");
    }
    auto key = percent_decode(item.substr(0, eq), display_url);
    has_application_name = has_application_name || key == "application_name";
    pairs.emplace_back(std::move(key), percent_decode(item.substr(eq + 1), display_url));
  }
  if (!has_application_name) pairs.emplace_back("application_name", "slmhub");
  std::string conninfo;
  for (const auto& [key, value] : pairs) {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += key + '=' + conninfo_quote(value);
  }
  return conninfo;
}

void register_connectors() {
  static std::once_flag once;
  std::call_once(once, [] {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::PostgreSQL::Connector::registerConnector();
  });
}

// ---------------------------------------------------------------------------------------
// Connections

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return std::hash<std::string_view>{}(text);
  }
};

template <typename V>
using StatementMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// One engine session, used by one thread at a time (the pool hands it out).
class Connection {
 public:
  virtual ~Connection() = default;
  // `synced` false: commit without waiting for the disk (Database::transact_unsynced).
  virtual void begin(bool serializable, bool synced) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // Runs one statement with `?` placeholders; fills `rows` when given; returns the number
  // of rows the statement changed.
  virtual std::int64_t run(std::string_view sql, const Params& params, std::vector<Row>* rows) = 0;
  // Runs a script of statements without parameters, each as written (migrations).
  virtual void run_script(std::string_view script) = 0;
  // A broken connection is closed instead of going back to the pool.
  virtual bool broken() const = 0;
};

}  // namespace

// SQLite checkpoints the WAL into the database file itself, by default in the connection
// whose commit took the WAL past 1,000 pages, while that commit still holds the write lock:
// every few hundred writes, one writer copies ~4 MB and waits for two fsyncs while all the
// others queue behind it. Here a thread with its own connection does that copy instead (a
// PASSIVE checkpoint, which writers need not wait for), woken by the commits' WAL hook, and
// then, holding the in-process write lock, copies the few pages written meanwhile: that
// checkpoint is complete, so the next transaction starts the WAL again from its beginning
// and the file stays at its usual size. Writers wait only for the second, short pass.
// Should the thread fall behind so far that the WAL passes kWalLimit pages, the committing
// connection checkpoints itself as SQLite would have.
class Database::Checkpointer {
 public:
  static constexpr int kWalPages = 1000;    // SQLite's own autocheckpoint threshold
  static constexpr int kWalLimit = 100000;  // ~400 MB of WAL

  explicit Checkpointer(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      const std::string reason = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open the checkpoint connection: " + reason);
    }
    sqlite3_busy_timeout(db_, 5000);
    // The copy into the database file is synced before the WAL is reused, as SQLite's own
    // checkpoints are at synchronous=FULL.
    sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
    thread_ = std::thread([this] { run(); });
  }

  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    sqlite3_close(db_);
  }

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // SQLite has one writer at a time; waiting here is cheaper and fairer than polling the file
  // lock through the busy handler. Held through each write transaction, its commit and WAL
  // hook, and by the checkpointer's second pass.
  std::unique_lock<std::mutex> lock_writer() {
    // std::mutex does not queue: a thread that commits again at once takes it back before a
    // woken waiter runs, and a stream of writes kept the second pass waiting for 100 ms and
    // more while the WAL grew by thousands of pages. Whoever holds the turnstile is next.
    const std::lock_guard waiting(turnstile_);
    return std::unique_lock(writer_);
  }

  // Installed on every connection of the pool in place of SQLite's autocheckpoint.
  void watch(sqlite3* connection) { sqlite3_wal_hook(connection, &Checkpointer::on_commit, this); }

 private:
  static int on_commit(void* self, sqlite3* connection, const char* schema, int pages) {
    if (pages >= kWalLimit) {
      sqlite3_wal_checkpoint_v2(connection, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kWalPages) {
      auto* checkpointer = static_cast<Checkpointer*>(self);
      {
        std::lock_guard lock(checkpointer->mutex_);
        checkpointer->due_ = true;
      }
      checkpointer->wake_.notify_one();
    }
    return SQLITE_OK;
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return due_ || stopping_; });
      if (stopping_) return;
      due_ = false;
      lock.unlock();
      // Busy (a reader holds a snapshot) or an I/O error: the next commit past the threshold
      // asks again, and the connection at kWalLimit does it itself.
      if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) ==
          SQLITE_OK) {
        const auto writing = lock_writer();
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      }
      lock.lock();
    }
  }

  sqlite3* db_ = nullptr;
  std::mutex turnstile_;
  std::mutex writer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool due_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

namespace {

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(const std::string& path, int busy_timeout_ms,
                   Database::Checkpointer* checkpointer)
      : session_("SQLite", path), db_(Poco::Data::SQLite::Utility::dbHandle(session_)) {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
    // "x" is an identifier in PostgreSQL; refusing it as a string here keeps SQL portable.
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
    sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DDL, 0, nullptr);
    std::vector<Row> mode;
    run("PRAGMA journal_mode", {}, &mode);
    if (mode.empty() || mode[0].values.empty() || mode[0].values[0] != Value("wal")) {
      mode.clear();
      run("PRAGMA journal_mode=WAL", {}, &mode);
      if (mode.empty() || mode[0].values.empty() || mode[0].values[0] != Value("wal")) {
        throw std::runtime_error("SQLite refused the WAL journal mode");
      }
    }
    // FULL: a committed transaction survives power loss, not only a process crash.
    run("PRAGMA synchronous=FULL", {}, nullptr);
    run("PRAGMA foreign_keys=ON", {}, nullptr);
    // 32 MiB of page cache (the default is 2 MiB): a large transaction, such as an alert
    // queued for 10,000 recipients, stays in memory instead of spilling pages half-way.
    run("PRAGMA cache_size=-32768", {}, nullptr);
    if (checkpointer != nullptr) checkpointer->watch(db_);
  }

  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  void begin(bool /*serializable: SQLite always is*/, bool synced) override {
    // The setting is the connection's, so it goes back to FULL when the transaction ends:
    // statements in autocommit and later transactions are synced.
    if (!synced) run("PRAGMA synchronous=NORMAL", {}, nullptr);
    unsynced_ = !synced;
    try {
      run("BEGIN IMMEDIATE", {}, nullptr);
    } catch (...) {
      resync();
      throw;
    }
  }
  void commit() override {
    run("COMMIT", {}, nullptr);
    resync();
  }
  void rollback() noexcept override {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    resync();
  }
  bool broken() const override { return false; }

  std::int64_t run(std::string_view sql, const Params& params, std::vector<Row>* rows) override {
    sqlite3_stmt* stmt = cached(sql);
    struct Reset {
      sqlite3_stmt* stmt;
      ~Reset() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    const int expected = sqlite3_bind_parameter_count(stmt);
    if (static_cast<std::size_t>(expected) != params.size()) {
      throw_statement_error(sql,
                            "the statement has " + std::to_string(expected) + " placeholders but " +
                                std::to_string(params.size()) + " parameters were given",
                            false);
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      if (const auto* integer = std::get_if<std::int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(stmt, index, *integer);
      } else if (const auto* text = std::get_if<std::string>(&params[i])) {
        // SQLITE_STATIC: `params` outlives the statement's use; Reset clears the binding.
        rc = sqlite3_bind_text64(stmt, index, text->data(), text->size(), SQLITE_STATIC,
                                 SQLITE_UTF8);
      } else {
        rc = sqlite3_bind_null(stmt, index);
      }
      if (rc != SQLITE_OK) fail(sql, rc);
    }
    const auto changes_before = sqlite3_total_changes64(db_);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(sql, rc);
      if (rows != nullptr) rows->push_back(read_row(stmt));
    }
    // sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so a DDL or
    // SELECT would report someone else's rows without this check.
    return sqlite3_total_changes64(db_) == changes_before ? 0 : sqlite3_changes64(db_);
  }

  void run_script(std::string_view script) override {
    // SQLite splits the script itself, so CREATE TRIGGER ... BEGIN ...; END stays whole.
    const char* tail = script.data();
    const char* end = script.data() + script.size();
    while (tail < end) {
      sqlite3_stmt* stmt = nullptr;
      const char* start = tail;
      const int rc = sqlite3_prepare_v2(db_, start, static_cast<int>(end - start), &stmt, &tail);
      if (rc != SQLITE_OK) fail(std::string_view(start, end - start), rc);
      if (stmt == nullptr) continue;  // only whitespace or a comment was left
      const std::string_view text(start, tail - start);
      int step = SQLITE_ROW;
      while (step == SQLITE_ROW) step = sqlite3_step(stmt);
      if (step != SQLITE_DONE) {
        const std::string message = sqlite3_errmsg(db_);
        sqlite3_finalize(stmt);
        throw_statement_error(text, message + " (SQLite code " + std::to_string(step) + ")",
                              is_busy(step));
      }
      sqlite3_finalize(stmt);
    }
  }

 private:
  static bool is_busy(int rc) { return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED; }

  [[noreturn]] void fail(std::string_view sql, int rc) const {
    throw_statement_error(
        sql, std::string(sqlite3_errmsg(db_)) + " (SQLite code " + std::to_string(rc) + ")",
        is_busy(rc));
  }

  sqlite3_stmt* cached(std::string_view sql) {
    if (auto it = cache_.map.find(sql); it != cache_.map.end()) return it->second;
    if (cache_.map.size() >= kMaxCachedStatements) cache_.clear();
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) fail(sql, rc);
    if (stmt == nullptr) throw_statement_error(sql, "the SQL holds no statement", false);
    const std::string_view rest(tail, sql.data() + sql.size() - tail);
    if (!is_blank(rest) && rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
      sqlite3_finalize(stmt);
      throw_statement_error(sql, "one statement per call: text follows the first statement", false);
    }
    cache_.map.emplace(std::string(sql), stmt);
    return stmt;
  }

  static Row read_row(sqlite3_stmt* stmt) {
    Row row;
    const int columns = sqlite3_column_count(stmt);
    row.values.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_INTEGER:
          row.values.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, c)));
          break;
        case SQLITE_FLOAT:
          row.values.push_back(from_double(sqlite3_column_double(stmt, c)));
          break;
        case SQLITE_TEXT: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row.values.emplace_back(std::string(text, sqlite3_column_bytes(stmt, c)));
          break;
        }
        case SQLITE_BLOB: {
          const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt, c));
          const int size = sqlite3_column_bytes(stmt, c);
          row.values.emplace_back(size == 0 ? std::string() : std::string(blob, size));
          break;
        }
        default:
          row.values.emplace_back(std::monostate{});
      }
    }
    return row;
  }

  // Finalizes its statements before Poco closes the handle (members die in reverse order,
  // also when the constructor throws); sqlite3_close refuses while statements remain.
  struct Statements {
    StatementMap<sqlite3_stmt*> map;
    Statements() = default;
    Statements(const Statements&) = delete;
    Statements& operator=(const Statements&) = delete;
    ~Statements() { clear(); }
    void clear() {
      for (auto& [sql, stmt] : map) sqlite3_finalize(stmt);
      map.clear();
    }
  };

  void resync() noexcept {
    if (unsynced_) sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
    unsynced_ = false;
  }

  Poco::Data::Session session_;
  sqlite3* db_;
  Statements cache_;
  bool unsynced_ = false;  // in a transact_unsynced transaction
};

// Owns a PGresult.
struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(const std::string& conninfo) : session_(open_session(conninfo)) {
    auto* impl = dynamic_cast<Poco::Data::PostgreSQL::SessionImpl*>(session_.impl());
    if (impl == nullptr) throw std::logic_error("Poco PostgreSQL session of an unexpected type");
    conn_ = impl->handle();
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw std::runtime_error(trimmed(PQerrorMessage(conn_)));
    }
    // NOTICEs ("relation already exists, skipping") would go to stderr; nothing needs them.
    PQsetNoticeProcessor(
        conn_, [](void* /*arg*/, const char* /*message*/) {}, nullptr);
    // Row values are UTF-8 whatever the server or database encoding is.
    if (PQsetClientEncoding(conn_, "UTF8") != 0) {
      throw std::runtime_error("cannot set client_encoding UTF8: " +
                               trimmed(PQerrorMessage(conn_)));
    }
  }

  void begin(bool serializable, bool synced) override {
    if (reset_cache_) forget_statements();
    simple(serializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN");
    if (!synced) simple("SET LOCAL synchronous_commit TO OFF");
  }

  void commit() override {
    const Result result = simple("COMMIT");
    // COMMIT of a transaction in which a statement failed silently rolls back.
    if (std::string_view(PQcmdStatus(result.get())) == "ROLLBACK") {
      throw_statement_error("COMMIT", "the server rolled the transaction back", false);
    }
  }

  void rollback() noexcept override {
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      PQclear(PQexec(conn_, "ROLLBACK"));
    }
  }

  bool broken() const override { return PQstatus(conn_) != CONNECTION_OK; }

  std::int64_t run(std::string_view sql, const Params& params, std::vector<Row>* rows) override {
    const Prepared& statement = prepared(sql, params.size());
    // Integers travel as text and the server converts them to the column's type; only
    // bytea takes its bytes as they are (binary format), so {{blob}} holds raw bytes.
    std::vector<std::string> numbers(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* integer = std::get_if<std::int64_t>(&params[i])) {
        numbers[i] = std::to_string(*integer);
        values[i] = numbers[i].c_str();
      } else if (const auto* text = std::get_if<std::string>(&params[i])) {
        values[i] = text->c_str();
        lengths[i] = static_cast<int>(text->size());
        if (statement.types[i] == kByteaOid) {
          formats[i] = 1;
        } else if (text->find('\0') != std::string::npos) {
          throw_statement_error(sql,
                                "parameter " + std::to_string(i + 1) +
                                    " holds a NUL byte, which PostgreSQL text cannot store",
                                false);
        }
      }
    }
    const Result result(PQexecPrepared(conn_, statement.name.c_str(),
                                       static_cast<int>(params.size()), values.data(),
                                       lengths.data(), formats.data(), 0));
    check(result.get(), sql);
    if (rows != nullptr) read_rows(result.get(), *rows);
    return changes(result.get());
  }

  void run_script(std::string_view script) override {
    for (const auto& statement : split_statements(script)) {
      const Result result(PQexec(conn_, statement.c_str()));
      check(result.get(), statement);
    }
  }

 private:
  struct Prepared {
    std::string name;
    std::vector<Oid> types;
  };

  static Poco::Data::Session open_session(const std::string& conninfo) {
    // Poco 1.11 does not PQfinish a connection that failed to open: a leak per attempt,
    // and attempts repeat while a server is down. A ping keeps that case away from Poco,
    // and the reason comes from a connection we close ourselves.
    if (PQping(conninfo.c_str()) != PQPING_OK) {
      PGconn* probe = PQconnectdb(conninfo.c_str());
      const bool ok = PQstatus(probe) == CONNECTION_OK;
      const std::string reason = trimmed(PQerrorMessage(probe));
      PQfinish(probe);
      if (!ok) throw std::runtime_error(reason);
    }
    return {"PostgreSQL", conninfo};
  }

  static std::string trimmed(const char* message) {
    return message == nullptr ? std::string() : one_line(message);
  }

  const Prepared& prepared(std::string_view sql, std::size_t param_count) {
    if (reset_cache_ || cache_.size() >= kMaxCachedStatements) forget_statements();
    if (auto it = cache_.find(sql); it != cache_.end()) {
      if (it->second.types.size() != param_count) {
        throw_statement_error(sql, placeholder_mismatch(it->second.types.size(), param_count),
                              false);
      }
      return it->second;
    }
    int placeholders = 0;
    const std::string translated = to_postgres_placeholders(sql, placeholders);
    if (static_cast<std::size_t>(placeholders) != param_count) {
      throw_statement_error(sql, placeholder_mismatch(placeholders, param_count), false);
    }
    Prepared statement{"slmhub_" + std::to_string(++statement_serial_), {}};
    {
      const Result result(PQprepare(conn_, statement.name.c_str(), translated.c_str(), 0, nullptr));
      check(result.get(), sql);
    }
    // The parameter types tell which parameters are bytea (sent in binary).
    const Result description(PQdescribePrepared(conn_, statement.name.c_str()));
    check(description.get(), sql);
    const int count = PQnparams(description.get());
    for (int i = 0; i < count; ++i) statement.types.push_back(PQparamtype(description.get(), i));
    return cache_.emplace(std::string(sql), std::move(statement)).first->second;
  }

  static std::string placeholder_mismatch(std::size_t placeholders, std::size_t params) {
    return "the statement has " + std::to_string(placeholders) + " placeholders but " +
           std::to_string(params) + " parameters were given";
  }

  // DEALLOCATE ALL cannot run in a failed transaction; the next call that can will.
  void forget_statements() {
    reset_cache_ = true;
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) return;
    PQclear(PQexec(conn_, "DEALLOCATE ALL"));
    cache_.clear();
    reset_cache_ = false;
  }

  Result simple(const char* sql) {
    Result result(PQexec(conn_, sql));
    check(result.get(), sql);
    return result;
  }

  void check(const PGresult* result, std::string_view sql) {
    const auto status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
      return;
    }
    const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string sqlstate = state == nullptr ? "" : state;
    std::string message;
    if (const char* primary =
            result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) {
      message = primary;
      if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) {
        message += std::string(": ") + detail;
      }
      message += " (SQLSTATE " + sqlstate + ")";
    } else {
      message = trimmed(PQerrorMessage(conn_));
    }
    // A plan cached before a schema change ("cached plan must not change result type") or
    // a prepared statement the server no longer has: prepare afresh and run the
    // transaction again.
    const bool stale = sqlstate == "0A000" || sqlstate == "26000";
    if (stale) reset_cache_ = true;
    throw_statement_error(sql, message, sqlstate == "40001" || sqlstate == "40P01" || stale);
  }

  static std::int64_t changes(const PGresult* result) {
    const std::string_view tag = PQcmdStatus(const_cast<PGresult*>(result));
    if (starts_with(tag, "SELECT")) return 0;  // PQcmdTuples counts the rows read there
    return parse_int64(PQcmdTuples(const_cast<PGresult*>(result))).value_or(0);
  }

  static void read_rows(const PGresult* result, std::vector<Row>& rows) {
    const int count = PQntuples(result);
    const int columns = PQnfields(result);
    rows.reserve(rows.size() + static_cast<std::size_t>(count));
    for (int r = 0; r < count; ++r) {
      Row row;
      row.values.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (PQgetisnull(result, r, c) != 0) {
          row.values.emplace_back(std::monostate{});
          continue;
        }
        const std::string_view text(PQgetvalue(result, r, c),
                                    static_cast<std::size_t>(PQgetlength(result, r, c)));
        row.values.push_back(convert(PQftype(result, c), text));
      }
      rows.push_back(std::move(row));
    }
  }

  static Value convert(Oid type, std::string_view text) {
    switch (type) {
      case kInt2Oid:
      case kInt4Oid:
      case kInt8Oid:
      case kOidOid:
        if (auto value = parse_int64(text)) return *value;
        return std::string(text);
      case kNumericOid:
        return from_numeric(text);
      case kFloat4Oid:
      case kFloat8Oid: {
        double number = 0;
        const auto result = std::from_chars(text.data(), text.data() + text.size(), number);
        if (result.ec != std::errc()) return std::string(text);
        return whole_or_text(number, std::string(text));
      }
      case kBoolOid:
        return std::int64_t{text == "t" ? 1 : 0};  // SQLite has no boolean either
      case kByteaOid: {
        std::size_t size = 0;
        unsigned char* bytes = PQunescapeBytea(
            reinterpret_cast<const unsigned char*>(std::string(text).c_str()), &size);
        if (bytes == nullptr) return std::string(text);
        std::string out(reinterpret_cast<const char*>(bytes), size);
        PQfreemem(bytes);
        return out;
      }
      default:
        return std::string(text);
    }
  }

  Poco::Data::Session session_;
  PGconn* conn_ = nullptr;
  StatementMap<Prepared> cache_;
  std::uint64_t statement_serial_ = 0;
  bool reset_cache_ = false;
};

// The transaction running on this thread, per Database, so that nested calls are found.
struct ActiveTransaction {
  const Database* database;
  Database::Transaction* transaction;
  ActiveTransaction* outer;
};
thread_local ActiveTransaction* t_active = nullptr;

Database::Transaction* active_transaction(const Database* database) {
  for (auto* it = t_active; it != nullptr; it = it->outer) {
    if (it->database == database) return it->transaction;
  }
  return nullptr;
}

class ActiveScope {
 public:
  ActiveScope(const Database* database, Database::Transaction* transaction)
      : entry_{database, transaction, t_active} {
    t_active = &entry_;
  }
  ~ActiveScope() { t_active = entry_.outer; }
  ActiveScope(const ActiveScope&) = delete;
  ActiveScope& operator=(const ActiveScope&) = delete;

 private:
  ActiveTransaction entry_;
};

std::string changed_description(const std::string& owner, const Migration& migration,
                                const std::string& applied) {
  return "migration " + owner + " version " + std::to_string(migration.version) +
         " was applied as \"" + applied + "\" but this build describes it as \"" +
         migration.description + "\"; a released migration must not change";
}

std::string expand_migration(std::string_view owner, const Migration& migration, Dialect dialect) {
  std::string sql = migration.sql;
  const auto replace_all = [&sql](std::string_view token, std::string_view with) {
    for (auto at = sql.find(token); at != std::string::npos;
         at = sql.find(token, at + with.size())) {
      sql.replace(at, token.size(), with);
    }
  };
  replace_all("{{serial}}", dialect == Dialect::sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT"
                                                       : "BIGSERIAL PRIMARY KEY");
  replace_all("{{blob}}", dialect == Dialect::sqlite ? "BLOB" : "BYTEA");
  // {{append_only:TABLE}}: triggers that refuse every UPDATE and DELETE of TABLE's rows (and a
  // TRUNCATE on PostgreSQL), whoever runs them: what is written there stays as written.
  constexpr std::string_view kAppendOnly = "{{append_only:";
  for (auto at = sql.find(kAppendOnly); at != std::string::npos; at = sql.find(kAppendOnly)) {
    const auto close = sql.find("}}", at);
    const std::string table = sql.substr(at + kAppendOnly.size(), close - at - kAppendOnly.size());
    if (close == std::string::npos || table.empty() ||
        table.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
      throw std::runtime_error("migration " + std::string(owner) + " version " +
                               std::to_string(migration.version) +
                               ": {{append_only:TABLE}} needs a table name");
    }
    const std::string refusal = "RAISE(ABORT, '" + table + " is append-only')";
    const std::string triggers =
        dialect == Dialect::sqlite
            // INSERT OR REPLACE deletes without the DELETE trigger: an insert onto a row
            // that exists is refused too.
            ? "CREATE TRIGGER " + table + "_no_update BEFORE UPDATE ON " + table +
                  " BEGIN SELECT " + refusal + "; END;\nCREATE TRIGGER " + table +
                  "_no_delete BEFORE DELETE ON " + table + " BEGIN SELECT " + refusal +
                  "; END;\nCREATE TRIGGER " + table + "_no_replace BEFORE INSERT ON " + table +
                  " WHEN EXISTS (SELECT 1 FROM " + table +
                  " WHERE rowid = NEW.rowid) BEGIN SELECT " + refusal + "; END"
            : "CREATE OR REPLACE FUNCTION slmhub_append_only() RETURNS trigger LANGUAGE plpgsql "
              "AS 'BEGIN RAISE EXCEPTION ''% is append-only'', TG_TABLE_NAME; END';\n"
              "CREATE TRIGGER " +
                  table + "_append_only BEFORE UPDATE OR DELETE ON " + table +
                  " FOR EACH ROW EXECUTE FUNCTION slmhub_append_only();\nCREATE TRIGGER " + table +
                  "_no_truncate BEFORE TRUNCATE ON " + table +
                  " FOR EACH STATEMENT EXECUTE FUNCTION slmhub_append_only()";
    sql.replace(at, close + 2 - at, triggers);
  }
  if (const auto at = sql.find("{{"); at != std::string::npos) {
    const auto close = sql.find("}}", at);
    const auto name = sql.substr(at, close == std::string::npos ? 12 : close + 2 - at);
    if (name.find_first_not_of("{}abcdefghijklmnopqrstuvwxyz_") == std::string::npos) {
      throw std::runtime_error("migration " + std::string(owner) + " version " +
                               std::to_string(migration.version) + ": unknown placeholder " + name +
                               " (allowed: {{serial}}, {{blob}}, {{append_only:TABLE}})");
    }
  }
  return sql;
}

}  // namespace

// ---------------------------------------------------------------------------------------

std::string to_postgres_placeholders(std::string_view sql, int& count) {
  std::string out(sql);
  std::vector<std::size_t> marks;
  scan_sql(sql, [&](std::size_t i) {
    if (sql[i] == '?') marks.push_back(i);
  });
  count = static_cast<int>(marks.size());
  for (std::size_t k = marks.size(); k-- > 0;) {
    out.replace(marks[k], 1, "$" + std::to_string(k + 1));
  }
  return out;
}

std::vector<std::string> split_statements(std::string_view script) {
  std::vector<std::string> statements;
  std::size_t start = 0;
  const auto add = [&](std::size_t end) {
    const auto piece = script.substr(start, end - start);
    if (!is_blank(piece)) {
      const auto first = piece.find_first_not_of(" \t\r\n");
      const auto last = piece.find_last_not_of(" \t\r\n");
      statements.emplace_back(piece.substr(first, last - first + 1));
    }
    start = end + 1;
  };
  scan_sql(script, [&](std::size_t i) {
    if (script[i] == ';') add(i);
  });
  if (start < script.size()) add(script.size());
  return statements;
}

// ---------------------------------------------------------------------------------------

class Database::Pool {
 public:
  using Factory = std::function<std::unique_ptr<Connection>()>;

  Pool(Factory factory, std::size_t max_connections, int acquire_timeout_ms)
      : factory_(std::move(factory)),
        max_(std::max<std::size_t>(1, max_connections)),
        acquire_timeout_(acquire_timeout_ms) {}

  // A connection on loan; goes back to the pool (or is closed when broken) on scope exit.
  // The writer's connection is lent without leaving the pool's hands.
  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(connection.get()), owned_(std::move(connection)) {}
    Lease(Pool& pool, Connection& lent) : pool_(pool), connection_(&lent) {}
    ~Lease() {
      if (owned_) pool_.give_back(std::move(owned_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() const { return *connection_; }

   private:
    Pool& pool_;
    Connection* connection_;
    std::unique_ptr<Connection> owned_;
  };

  // SQLite: the one connection every transaction runs on, outside the pool, for the caller
  // holding the in-process write lock. A connection's page cache survives only its own
  // commits: SQLite drops the whole cache of any connection that finds another's commit in
  // the WAL when its next transaction begins. Transactions on whichever pooled connection
  // was idle made the writer re-read its B-tree pages almost every time; on one connection
  // they stay cached, and so do its prepared statements.
  Lease writer() {
    if (writer_ && writer_->broken()) writer_.reset();
    if (!writer_) writer_ = factory_();
    return Lease(*this, *writer_);
  }

  Lease acquire() {
    std::unique_lock lock(mutex_);
    const bool ready = available_.wait_for(lock, acquire_timeout_,
                                           [this] { return !idle_.empty() || open_ < max_; });
    if (!ready) {
      throw Problem(503, "Database busy",
                    "no free database connection within " +
                        std::to_string(acquire_timeout_.count()) + " ms (all " +
                        std::to_string(max_) + " in use)");
    }
    if (!idle_.empty()) {
      // Most recently used first: its statement cache is the warmest.
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(*this, factory_());
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

 private:
  void give_back(std::unique_ptr<Connection> connection) {
    if (!connection) return;
    std::unique_lock lock(mutex_);
    if (connection->broken()) {
      --open_;
      lock.unlock();
      connection.reset();
    } else {
      idle_.push_back(std::move(connection));
      lock.unlock();
    }
    available_.notify_one();
  }

  Factory factory_;
  std::size_t max_;
  std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
  std::unique_ptr<Connection> writer_;
};

// The Tx handed to a work function. After the first failed statement it refuses further
// statements: PostgreSQL would, and SQLite must behave the same.
class Database::Transaction final : public Tx {
 public:
  Transaction(Connection& connection, Dialect dialect)
      : connection_(connection), dialect_(dialect) {}

  std::int64_t exec(std::string_view sql, const Params& params) override {
    return guarded([&] { return connection_.run(sql, params, nullptr); });
  }

  std::vector<Row> query(std::string_view sql, const Params& params) override {
    std::vector<Row> rows;
    guarded([&] { return connection_.run(sql, params, &rows); });
    return rows;
  }

  Dialect dialect() const override { return dialect_; }

  void script(std::string_view sql) {
    guarded([&] {
      connection_.run_script(sql);
      return std::int64_t{0};
    });
  }

  bool failed() const { return !failure_.empty(); }
  bool retryable() const { return retryable_; }
  const std::string& failure() const { return failure_; }

 private:
  template <typename F>
  std::int64_t guarded(F&& f) {
    if (failed()) {
      throw std::runtime_error(
          "statement refused: an earlier statement of this transaction failed (" + failure_ +
          "); let that error propagate out of the work function");
    }
    try {
      return f();
    } catch (const EngineError& e) {
      failure_ = e.what();
      retryable_ = e.retryable();
      throw;
    }
  }

  Connection& connection_;
  Dialect dialect_;
  std::string failure_;
  bool retryable_ = false;
};

// ---------------------------------------------------------------------------------------

Database::Database(Dialect dialect, std::string display_url, Options options,
                   std::unique_ptr<Checkpointer> checkpointer, std::unique_ptr<Pool> pool)
    : dialect_(dialect),
      display_url_(std::move(display_url)),
      options_(options),
      checkpointer_(std::move(checkpointer)),
      pool_(std::move(pool)) {}

Database::~Database() = default;

std::unique_ptr<Database> Database::open(const std::string& url) { return open(url, Options{}); }

std::unique_ptr<Database> Database::open(const std::string& url, const Options& options) {
  register_connectors();
  const std::string display = mask_password(url);
  Dialect dialect;
  Pool::Factory factory;
  std::unique_ptr<Checkpointer> checkpointer;
  if (starts_with(url, "sqlite:")) {
    const std::string path = url.substr(7);
    if (path.empty() || path == ":memory:" || starts_with(path, "//")) {
      throw std::runtime_error(
          "bad database URL " + display +
          ": use sqlite:PATH with a file path (an in-memory database would differ per pooled "
          "connection), e.g. sqlite:var/slmhub.db or sqlite:/var/lib/slmhub/slmhub.db");
    }
    const auto directory = std::filesystem::path(path).parent_path();
    if (!directory.empty()) {
      std::error_code error;
      std::filesystem::create_directories(directory, error);
      if (error) {
        throw std::runtime_error("cannot open database " + display + ": cannot create directory " +
                                 directory.string() + ": " + error.message());
      }
    }
    dialect = Dialect::sqlite;
    turn_off_memory_statistics();
    install_page_cache_region(kPageCacheRegionBytes);
    install_page_cache_bounds();
    install_wal_gathering();
    // The first connection creates the file (and makes it WAL) before the checkpointer opens it.
    SqliteConnection first(path, options.busy_timeout_ms, nullptr);
    checkpointer = std::make_unique<Checkpointer>(path);
    factory = [path, timeout = options.busy_timeout_ms,
               ck = checkpointer.get()]() -> std::unique_ptr<Connection> {
      return std::make_unique<SqliteConnection>(path, timeout, ck);
    };
  } else if (starts_with(url, "postgresql:") || starts_with(url, "postgres:")) {
    const std::string rest = url.substr(url.find(':') + 1);
    std::string conninfo;
    if (starts_with(rest, "//")) {
      conninfo = postgres_conninfo(url, display);
    } else if (rest.find('=') != std::string::npos) {
      conninfo = rest;
    } else {
      throw std::runtime_error("bad database URL " + display +
                               ": use postgresql://user[:password]@host[:port]/dbname or "
                               "postgresql:host=... dbname=... (libpq key=value)");
    }
    // Without it libpq waits for an unresponsive host as long as TCP does.
    if (conninfo.find("connect_timeout") == std::string::npos) conninfo += " connect_timeout=10";
    dialect = Dialect::postgresql;
    factory = [conninfo]() -> std::unique_ptr<Connection> {
      return std::make_unique<PostgresConnection>(conninfo);
    };
  } else {
    throw std::runtime_error(
        "unsupported database URL " + display +
        ": use sqlite:PATH or postgresql://user[:password]@host[:port]/dbname");
  }
  // Every later connection comes from the same factory; its errors name the URL too.
  auto guarded_factory = [factory = std::move(factory), display]() -> std::unique_ptr<Connection> {
    try {
      return factory();
    } catch (const Poco::Exception& e) {
      throw std::runtime_error("cannot open database " + display + ": " +
                               one_line(e.displayText()));
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot open database " + display + ": " + one_line(e.what()));
    }
  };
  auto pool = std::make_unique<Pool>(std::move(guarded_factory), options.max_connections,
                                     options.acquire_timeout_ms);
  std::unique_ptr<Database> database(
      new Database(dialect, display, options, std::move(checkpointer), std::move(pool)));
  try {
    database->ensure_migrations_table();  // also proves the database is reachable and writable
  } catch (const std::exception& e) {
    const std::string message = e.what();
    if (starts_with(message, "cannot open database ")) throw;
    throw std::runtime_error("cannot open database " + display + ": " + message);
  }
  return database;
}

void Database::transact(const std::function<void(Tx&)>& work) {
  run_transaction([&work](Transaction& tx) { work(tx); }, {});
}

void Database::transact_unsynced(const std::function<void(Tx&)>& work) {
  run_transaction([&work](Transaction& tx) { work(tx); }, {.synced = false});
}

void Database::run_transaction(const std::function<void(Transaction&)>& body, TxMode mode) {
  if (active_transaction(this) != nullptr) {
    throw std::logic_error("transact called inside another transact on the same thread (" +
                           display_url_ + "); pass the outer Tx& to the inner code instead");
  }
  for (int attempt = 1;; ++attempt) {
    if (try_transaction(body, mode, attempt) == Attempt::done) return;
    retries_.fetch_add(1, std::memory_order_relaxed);
    backoff(attempt);
  }
}

Database::Attempt Database::try_transaction(const std::function<void(Transaction&)>& body,
                                            TxMode mode, int attempt) {
  const bool last = attempt >= options_.max_attempts;
  std::unique_lock<std::mutex> writer;
  if (checkpointer_) writer = checkpointer_->lock_writer();
  // SQLite has one writer at a time anyway; in this process it is always the same connection
  // (Pool::writer says why).
  const Pool::Lease lease = checkpointer_ ? pool_->writer() : pool_->acquire();
  Connection& connection = *lease;
  try {
    connection.begin(mode.serializable, mode.synced);
  } catch (const EngineError& e) {
    connection.rollback();
    // Nothing ran yet, so a lost connection is as safe to retry as a busy database.
    if (!(e.retryable() || connection.broken())) throw;
    if (last) give_up(e, attempt);
    return Attempt::retry;
  }
  Transaction tx(connection, dialect_);
  const ActiveScope scope(this, &tx);
  try {
    body(tx);
  } catch (const EngineError& e) {
    connection.rollback();
    if (!tx.retryable()) throw;
    if (last) give_up(e, attempt);
    return Attempt::retry;
  } catch (...) {
    connection.rollback();
    // The work function may have turned a busy error into its own exception.
    if (!tx.retryable() || last) throw;
    return Attempt::retry;
  }
  if (tx.failed()) {
    connection.rollback();
    if (tx.retryable() && !last) return Attempt::retry;
    throw std::runtime_error("transaction rolled back: " + tx.failure() +
                             " (the work function caught this error and returned normally)");
  }
  try {
    connection.commit();
  } catch (const EngineError& e) {
    connection.rollback();
    if (!e.retryable()) throw;
    if (last) give_up(e, attempt);
    return Attempt::retry;
  }
  return Attempt::done;
}

void Database::give_up(const std::exception& last, int attempts) const {
  throw Problem(503, "Database busy",
                std::string(last.what()) + "; gave up after " + std::to_string(attempts) +
                    " attempts on " + display_url_);
}

void Database::backoff(int attempt) {
  // Exponential with jitter, so transactions that collided do not collide again in step.
  thread_local std::minstd_rand random(std::random_device{}());
  const int ceiling_ms = 2 << std::min(attempt - 1, 7);  // 2, 4, ... 256 ms
  std::uniform_int_distribution<int> pick(ceiling_ms / 2, ceiling_ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(pick(random)));
}

std::vector<Row> Database::query(std::string_view sql, const Params& params) {
  if (Transaction* tx = active_transaction(this)) return tx->query(sql, params);
  for (int attempt = 1;; ++attempt) {
    try {
      const Pool::Lease lease = pool_->acquire();
      std::vector<Row> rows;
      (*lease).run(sql, params, &rows);
      return rows;
    } catch (const EngineError& e) {
      if (!e.retryable()) throw;
      if (attempt >= options_.max_attempts) give_up(e, attempt);
    }
    retries_.fetch_add(1, std::memory_order_relaxed);
    backoff(attempt);
  }
}

void Database::ensure_migrations_table() {
  run_transaction(
      [this](Transaction& tx) {
        if (dialect_ == Dialect::postgresql) tx.exec(kMigrationLockSql, {});
        tx.script(kMigrationsTableSql);
      },
      {.serializable = false});
}

void Database::migrate(std::string_view owner, const std::vector<Migration>& migrations) {
  migrate(owner, migrations, {});
}

void Database::migrate(std::string_view owner, const std::vector<Migration>& migrations,
                       const std::function<void(const Migration&)>& before_each) {
  const std::string who(owner);
  if (owner.empty()) throw std::invalid_argument("migrate: the owner name is empty");
  // Check the whole list before touching the database.
  std::vector<std::string> expanded;
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const Migration& m = migrations[i];
    if (m.version != static_cast<int>(i) + 1) {
      throw std::runtime_error("migrations of " + who + ": version " + std::to_string(m.version) +
                               " at position " + std::to_string(i + 1) + ", expected version " +
                               std::to_string(i + 1) +
                               " (versions must be 1..n in order, without gaps)");
    }
    if (m.description.empty() || m.description.find('\n') != std::string::npos) {
      throw std::runtime_error("migration " + who + " version " + std::to_string(m.version) +
                               ": the description must be one non-empty line");
    }
    expanded.push_back(expand_migration(owner, m, dialect_));
  }
  const auto applied = query(
      "SELECT version, description FROM schema_migrations WHERE owner = ? ORDER BY version", {who});
  std::vector<bool> done(migrations.size(), false);
  for (const Row& row : applied) {
    const auto version = row.integer(0);
    if (version < 1 || version > static_cast<std::int64_t>(migrations.size())) {
      throw std::runtime_error("migration " + who + " version " + std::to_string(version) + " (\"" +
                               row.text(1) + "\") is applied in " + display_url_ +
                               " but this build knows versions 1.." +
                               std::to_string(migrations.size()) + " only; is it older?");
    }
    const Migration& known = migrations[static_cast<std::size_t>(version - 1)];
    if (row.text(1) != known.description) {
      throw std::runtime_error(changed_description(who, known, row.text(1)));
    }
    done[static_cast<std::size_t>(version - 1)] = true;
  }
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (done[i]) continue;
    if (before_each) before_each(migrations[i]);
    apply_migration(owner, migrations[i], expanded[i]);
  }
  std::lock_guard lock(seen_mutex_);
  seen_.emplace_back(who, migrations);
}

std::vector<std::pair<std::string, std::vector<Migration>>> Database::migrations_seen() const {
  std::lock_guard lock(seen_mutex_);
  return seen_;
}

void Database::apply_migration(std::string_view owner, const Migration& migration,
                               const std::string& sql) {
  const std::string who(owner);
  const std::string where = "migration " + who + " version " + std::to_string(migration.version);
  bool description_differs = false;
  std::string applied_description;
  try {
    run_transaction(
        [&](Transaction& tx) {
          description_differs = false;
          // Another instance may be migrating: wait for it, then look again.
          if (dialect_ == Dialect::postgresql) tx.exec(kMigrationLockSql, {});
          const auto existing =
              tx.query("SELECT description FROM schema_migrations WHERE owner = ? AND version = ?",
                       {who, std::int64_t{migration.version}});
          if (!existing.empty()) {
            applied_description = existing[0].text(0);
            description_differs = applied_description != migration.description;
            return;
          }
          tx.script(sql);
          const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
          tx.exec(
              "INSERT INTO schema_migrations (owner, version, description, applied_at) "
              "VALUES (?, ?, ?, ?)",
              {who, std::int64_t{migration.version}, migration.description,
               static_cast<std::int64_t>(now)});
        },
        {.serializable = false});
  } catch (const std::exception& e) {
    throw std::runtime_error(where + " (\"" + migration.description + "\") failed: " + e.what());
  }
  if (description_differs) {
    throw std::runtime_error(changed_description(who, migration, applied_description));
  }
}

std::vector<std::pair<std::string, int>> Database::applied_versions() {
  std::vector<std::pair<std::string, int>> out;
  for (const Row& row : query("SELECT owner, MAX(version) FROM schema_migrations GROUP BY owner")) {
    out.emplace_back(row.text(0), static_cast<int>(row.integer(1)));
  }
  // Sorted here: ORDER BY would follow the database's collation, which differs by engine.
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace slmhub::host
