// Copying a whole store into another database (see store_copy.hpp).
//
// Tables and columns are read from the databases' catalogs rather than listed here, so a
// table a plugin adds is copied without this file knowing it. Rows are read and written in
// pages keyed on the physical row address (SQLite's rowid, PostgreSQL's ctid), which every
// table has, so neither side holds a whole table in memory.
#include "storage/store_copy.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "slmhub/digest.hpp"

namespace slmhub::host {
namespace {

constexpr std::int64_t kPageRows = 2000;
// PostgreSQL takes 65,535 parameters per statement, but libpq 15 refuses the description of
// a prepared statement longer than 30,000 bytes (4 bytes a parameter): "lost synchronization
// with server: got message type "t"". 5,000 parameters stay clear of both.
constexpr std::size_t kMaxParamsPerInsert = 5000;

std::string quoted(const std::string& identifier) {
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> tables(Store& db) {
  const auto rows =
      db.dialect() == Dialect::sqlite
          ? db.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <>"
                " 'sqlite_' ORDER BY name")
          : db.query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema ="
                " current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name");
  std::vector<std::string> out;
  for (const auto& row : rows) {
    if (row.text(0) != "schema_migrations") out.push_back(row.text(0));
  }
  return out;
}

std::vector<std::string> columns(Store& db, const std::string& table) {
  const auto rows = db.dialect() == Dialect::sqlite
                        ? db.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", {table})
                        : db.query(
                              "SELECT column_name::text FROM information_schema.columns WHERE"
                              " table_schema = current_schema() AND table_name = ?"
                              " ORDER BY ordinal_position",
                              {table});
  std::vector<std::string> out;
  for (const auto& row : rows) out.push_back(row.text(0));
  return out;
}

std::string select_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + quoted(name);
  return out;
}

// Calls `page` with successive pages of `table`'s rows (the listed columns), in physical
// order, until there are none left. `db` is a Store or, to read inside a transaction, a Tx.
template <typename Source>
void read_pages(Source& db, const std::string& table, const std::vector<std::string>& names,
                const std::function<void(const std::vector<Row>&)>& page) {
  const bool sqlite = db.dialect() == Dialect::sqlite;
  const std::string sql =
      // The alias keeps ORDER BY ctid on the tid: named ctid, the text column would be sorted.
      std::string("SELECT ") + (sqlite ? "rowid" : "ctid::text AS row_address") + ", " +
      select_list(names) + " FROM " + quoted(table) +
      (sqlite ? " WHERE rowid > ? ORDER BY rowid" : " WHERE ctid > CAST(? AS tid) ORDER BY ctid") +
      " LIMIT ?";
  Value after = sqlite ? Value(std::int64_t{0}) : Value(std::string("(0,0)"));
  for (;;) {
    auto rows = db.query(sql, {after, kPageRows});
    if (rows.empty()) return;
    after = rows.back().values.front();
    for (auto& row : rows) row.values.erase(row.values.begin());
    page(rows);
    if (static_cast<std::int64_t>(rows.size()) < kPageRows) return;
  }
}

// One row as unambiguous bytes: a tag per value, text with its length.
std::string canonical(const Row& row) {
  std::string out;
  for (const auto& value : row.values) {
    if (std::holds_alternative<std::monostate>(value)) {
      out += 'N';
    } else if (const auto* number = std::get_if<std::int64_t>(&value)) {
      out += 'I' + std::to_string(*number) + ';';
    } else {
      const auto& text = std::get<std::string>(value);
      out += 'T' + std::to_string(text.size()) + ':' + text;
    }
  }
  return out;
}

struct Digest {
  std::vector<std::string> row_digests;
  void add(const std::vector<Row>& page) {
    for (const auto& row : page) row_digests.push_back(sha256_hex(canonical(row)));
  }
  std::int64_t rows() const { return static_cast<std::int64_t>(row_digests.size()); }
  std::string finish() {
    std::sort(row_digests.begin(), row_digests.end());
    std::string all;
    all.reserve(row_digests.size() * 64);
    for (const auto& d : row_digests) all += d;
    return sha256_hex(all);
  }
};

void insert_page(Tx& tx, const std::string& table, const std::vector<std::string>& names,
                 const std::vector<Row>& page) {
  const std::size_t per_statement = std::max<std::size_t>(1, kMaxParamsPerInsert / names.size());
  std::string placeholders = "(";
  for (std::size_t i = 0; i < names.size(); ++i) placeholders += i ? ", ?" : "?";
  placeholders += ")";
  const std::string head = "INSERT INTO " + quoted(table) + " (" + select_list(names) + ") VALUES ";
  for (std::size_t from = 0; from < page.size(); from += per_statement) {
    const std::size_t to = std::min(page.size(), from + per_statement);
    std::string sql = head;
    Params params;
    params.reserve((to - from) * names.size());
    for (std::size_t i = from; i < to; ++i) {
      sql += (i == from ? "" : ", ") + placeholders;
      params.insert(params.end(), page[i].values.begin(), page[i].values.end());
    }
    tx.exec(sql, params);
  }
}

// After rows were inserted with their own ids, the next id a sequence hands out must be
// past them, or the first new row after the move would collide.
void advance_sequences(Tx& tx) {
  if (tx.dialect() != Dialect::postgresql) return;  // SQLite's AUTOINCREMENT follows by itself
  const auto serials = tx.query(
      "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE"
      " table_schema = current_schema() AND column_default LIKE 'nextval(%'");
  for (const auto& row : serials) {
    const std::string& table = row.text(0);
    const std::string& column = row.text(1);
    tx.query("SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX(" + quoted(column) +
                 ") FROM " + quoted(table) + "), 0) + 1, false)",
             {quoted(table), column});
  }
}

}  // namespace

std::vector<TableCheck> copy_store(Database& source, Database& target,
                                   const std::function<void(const std::string&)>& progress) {
  // Refuse before changing anything: the target must not hold data already.
  for (const auto& table : tables(target)) {
    const auto count = target.query("SELECT COUNT(*) FROM " + quoted(table)).at(0).integer(0);
    if (count > 0) {
      throw StoreCopyError("the target " + target.display_url() + " already holds data (table " +
                           table + ": " + std::to_string(count) +
                           " rows); migrate --to copies into an empty database");
    }
  }

  for (const auto& [owner, list] : source.migrations_seen()) target.migrate(owner, list);
  const auto source_versions = source.applied_versions();
  const auto target_versions = target.applied_versions();
  if (source_versions != target_versions) {
    std::map<std::string, int> built(target_versions.begin(), target_versions.end());
    for (const auto& [owner, version] : source_versions) {
      if (built[owner] != version) {
        throw StoreCopyError(
            "the source store has schema " + owner + " version " + std::to_string(version) +
            ", which this run could not build in the target (it has version " +
            std::to_string(built[owner]) +
            "): the plugin owning it is not loaded; enable it (plugins.enabled) and run again");
      }
    }
  }

  const auto source_tables = tables(source);
  std::map<std::string, std::vector<std::string>> names;
  for (const auto& table : source_tables) {
    auto source_columns = columns(source, table);
    auto target_columns = columns(target, table);
    if (target_columns.empty()) {
      throw StoreCopyError("table " + table + " of the source is missing in the target after " +
                           "migrating it; was it created outside the migrations?");
    }
    if (std::set(source_columns.begin(), source_columns.end()) !=
        std::set(target_columns.begin(), target_columns.end())) {
      throw StoreCopyError("table " + table + " has other columns in the source than in the " +
                           "target after migrating it; was it changed outside the migrations?");
    }
    names[table] = std::move(source_columns);
  }

  std::vector<TableCheck> checks;
  target.transact([&](Tx& tx) {
    checks.clear();  // transact may run this more than once
    for (const auto& table : source_tables) {
      const auto& cols = names.at(table);
      TableCheck check;
      check.table = table;
      Digest from;
      read_pages(source, table, cols, [&](const std::vector<Row>& page) {
        insert_page(tx, table, cols, page);
        from.add(page);
      });
      check.source_rows = from.rows();
      check.source_sha256 = from.finish();
      Digest back;
      read_pages(tx, table, cols, [&](const std::vector<Row>& page) { back.add(page); });
      check.target_rows = back.rows();
      check.target_sha256 = back.finish();
      if (progress) {
        progress(table + ": " + std::to_string(check.target_rows) + " of " +
                 std::to_string(check.source_rows) + " rows" + (check.matches() ? "" : " DIFFERS"));
      }
      checks.push_back(std::move(check));
    }
    for (const auto& check : checks) {
      if (!check.matches()) {
        throw StoreCopyError("table " + check.table +
                             " differs after the copy: " + std::to_string(check.source_rows) +
                             " rows in the source, " + std::to_string(check.target_rows) +
                             " read back from the target (checksums " +
                             check.source_sha256.substr(0, 12) + " and " +
                             check.target_sha256.substr(0, 12) + "); nothing was committed");
      }
    }
    advance_sequences(tx);
  });
  return checks;
}

}  // namespace slmhub::host
