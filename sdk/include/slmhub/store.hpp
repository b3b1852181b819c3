// Storage as a plugin sees it: portable SQL over SQLite or PostgreSQL, in transactions,
// with versioned migrations per owner. The host picks the engine (db.url); a plugin
// writes one SQL text that both accept.
//
// Portable SQL rules: `?` placeholders (translated to $1.. for PostgreSQL); types
// BIGINT / TEXT; `{{serial}}` expands to an auto-increment BIGINT primary key and
// `{{blob}}` to BLOB / BYTEA inside migrations; upserts with ON CONFLICT ... DO UPDATE;
// RETURNING is available on both.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace slmhub {

// A SQL value: NULL, an integer or text. Money, seconds and instants are integers (epoch
// seconds for instants); JSON is text.
using Value = std::variant<std::monostate, std::int64_t, std::string>;
using Params = std::vector<Value>;

struct Row {
  std::vector<Value> values;
  bool is_null(std::size_t i) const;
  std::int64_t integer(std::size_t i) const;  // throws if NULL or not an integer
  const std::string& text(std::size_t i) const;
  std::optional<std::int64_t> optional_integer(std::size_t i) const;
  std::optional<std::string> optional_text(std::size_t i) const;
};

enum class Dialect { sqlite, postgresql };

class Tx {
 public:
  virtual ~Tx() = default;
  // Runs one statement; returns the number of rows it changed.
  virtual std::int64_t exec(std::string_view sql, const Params& params = {}) = 0;
  virtual std::vector<Row> query(std::string_view sql, const Params& params = {}) = 0;
  virtual Dialect dialect() const = 0;
};

struct Migration {
  int version;              // 1, 2, 3 ... per owner; applied in order, once
  std::string description;  // one line, shown by `slmhub migrate`
  std::string sql;          // one or more statements separated by ';'
};

class Store {
 public:
  virtual ~Store() = default;
  // Applies the owner's migrations not applied yet, each in its own transaction.
  virtual void migrate(std::string_view owner, const std::vector<Migration>& migrations) = 0;
  // Runs `work` in one transaction: commits when it returns, rolls back when it throws
  // (and rethrows). Retries the whole function on a serialization failure or a busy
  // database, so `work` must not have effects outside the transaction.
  virtual void transact(const std::function<void(Tx&)>& work) = 0;
  // As transact(), for short writes that many callers make at the same moment (webhooks,
  // deliveries): `work` may share one transaction and one commit (one fsync) with other
  // callers' writes, and returns once that commit is done (group commit). When one write of a
  // group throws, the group is rolled back and each write runs again alone, so only its own
  // caller sees the error, and `work` may run more than once: it must have no effects outside
  // the transaction but its caller's own variables. Outside a running server it is transact().
  virtual void transact_grouped(const std::function<void(Tx&)>& work) { transact(work); }
  virtual std::vector<Row> query(std::string_view sql, const Params& params = {}) = 0;
  virtual Dialect dialect() const = 0;
};

}  // namespace slmhub
