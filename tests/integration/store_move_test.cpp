// Moving a store from SQLite to PostgreSQL with `slmhub migrate --to`, as an operator does
// it: the demo dataset plus 100,000 tickets arrive row for row (the command prints each
// table's count and checksum, and the test counts again itself), the moved store serves,
// and new rows take ids past the copied ones. A target that holds data is refused, and a
// running server keeps the store from being moved under it.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

#include "app/server.hpp"
#include "core/core_store.hpp"
#include "postgres_cluster.hpp"
#include "server_process.hpp"
#include "slmhub/json.hpp"
#include "storage/database.hpp"
#include "test_files.hpp"

namespace slmhub::test {
namespace {

constexpr int kTickets = 100000;

std::map<std::string, std::string> env_for(const std::string& db_url) {
  return {{"SLMHUB_DB_URL", db_url},
          {"SLMHUB_PLUGINS_DIR", SLMHUB_PLUGIN_DIR},
          {"SLMHUB_LOG_LEVEL", "error"}};
}

// table -> rows, from the command's "table\trows\tsha256" lines.
std::map<std::string, std::int64_t> rows_printed(const std::string& out) {
  std::map<std::string, std::int64_t> rows;
  std::istringstream lines(out);
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const auto second = line.find('\t', tab + 1);
    rows[line.substr(0, tab)] = std::stoll(line.substr(tab + 1, second - tab - 1));
  }
  return rows;
}

std::int64_t count(host::Database& db, const std::string& table) {
  return db.query("SELECT COUNT(*) FROM " + table).at(0).integer(0);
}

TEST(StoreMove, SqliteToPostgresqlCarriesEveryRow) {
  TempDir dir;
  const std::string sqlite_url = "sqlite:" + (dir.path() / "slmhub.db").string();
  {
    // The demo dataset and 100,000 tickets (in batches, as the e-mail intake writes them).
    host::Settings settings;
    settings.set("db.url", sqlite_url);
    settings.set("plugins.dir", SLMHUB_PLUGIN_DIR);
    settings.set("auth.admin_token_file", (dir.path() / "admin.token").string());
    settings.set("log.level", "error");
    host::Server server(std::move(settings), SLMHUB_PLUGIN_DIR "/../host");
    server.open();
    server.ensure_admin_token();
    server.core().import(Actor{"test"},
                         parse_json(read_text(SLMHUB_SOURCE_DIR "/config/demo-dataset.json")));
    for (int batch = 0; batch < kTickets / 1000; ++batch) {
      server.database().transact([&](Tx& tx) {
        for (int i = 0; i < 1000; ++i) {
          Ticket ticket;
          ticket.queue = "db-requests";
          ticket.subject = "Request " + std::to_string(batch * 1000 + i) + " — ünïcode";
          ticket.requester = "user" + std::to_string(i) + "@example.org";
          server.core().create(tx, Actor{"test"}, ticket);
        }
      });
    }
  }
  auto sqlite = host::Database::open(sqlite_url);
  const std::int64_t tickets = count(*sqlite, "tickets");
  ASSERT_GE(tickets, kTickets);

  const std::string pg_url = shared_cluster().create_database("moved");
  const auto moved = run_slmhub({"migrate", "--to", pg_url}, env_for(sqlite_url));
  ASSERT_EQ(moved.status, 0) << moved.err;
  EXPECT_NE(moved.out.find("rows copied; every count and checksum matches the source"),
            std::string::npos)
      << moved.out;
  const auto printed = rows_printed(moved.out);
  EXPECT_EQ(printed.at("tickets"), tickets);

  // Count again, independently of the command, on both sides.
  auto pg = host::Database::open(pg_url);
  std::int64_t tables = 0;
  for (const auto& row : sqlite->query(
           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
           " AND name <> 'schema_migrations'")) {
    const std::string& table = row.text(0);
    ++tables;
    EXPECT_EQ(count(*pg, table), count(*sqlite, table)) << table;
    EXPECT_EQ(printed.count(table), 1u) << table << " not listed";
  }
  EXPECT_EQ(static_cast<std::int64_t>(printed.size()), tables);
  EXPECT_EQ(pg->applied_versions(), sqlite->applied_versions());

  // Moving again into the same database is refused: it holds data now.
  const auto again = run_slmhub({"migrate", "--to", pg_url}, env_for(sqlite_url));
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.err.find("already holds data"), std::string::npos) << again.err;

  // The moved store serves, with the token made before the move, and a new row takes an id
  // past the copied ones (the sequences were moved on: otherwise the insert would collide
  // with a copied id).
  TempDir served;
  ServerProcess server(served.path(), {{"SLMHUB_DB_URL", pg_url}});
  server.start();
  std::string token = read_text(dir.path() / "admin.token");
  token.pop_back();  // the newline
  const auto created = http(server.port(), "POST", "/api/v1/interruptions",
                            R"({"id": "INC9001", "service": "oracle-prod", "type": "outage",
               "start": "2026-11-20T10:00:00Z", "end": "2026-11-20T10:30:00Z",
               "customers": ["registrar"]})",
                            token);
  EXPECT_EQ(created.status, 201) << created.body;
  EXPECT_GT(count(*pg, "events"), count(*sqlite, "events"));
  server.stop();
}

TEST(StoreMove, AServedStoreIsNotMoved) {
  TempDir dir;
  const std::string sqlite_url = "sqlite:" + (dir.path() / "slmhub.db").string();
  ServerProcess server(dir.path());
  server.start();
  const auto refused = run_slmhub({"migrate", "--to", shared_cluster().create_database("served")},
                                  env_for(sqlite_url));
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.err.find("another slmhub process is serving the store"), std::string::npos)
      << refused.err;
}

}  // namespace
}  // namespace slmhub::test
