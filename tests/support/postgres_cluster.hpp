// A throwaway PostgreSQL 15 server for tests: a fresh cluster made with initdb in a temp
// directory, listening on 127.0.0.1 and a free port, stopped and removed on destruction.
// Tests that need PostgreSQL fail (never skip) when the server binaries are missing.
//
// initdb and postgres refuse to run as root; when the tests run as root (CI), the server
// runs as the `postgres` system user through runuser and owns the temp directory.
// Binaries come from /usr/lib/postgresql/15/bin unless SLMHUB_PG_BIN names another folder.
#pragma once

#include <string>
#include <vector>

namespace slmhub::test {

class PostgresCluster {
 public:
  // Starts the server and creates the database `slmhub_test`; throws std::runtime_error
  // with the reason (and the tail of the server log) when it cannot.
  PostgresCluster();
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // postgresql://postgres@127.0.0.1:PORT/slmhub_test (trust authentication: no password).
  const std::string& url() const { return url_; }
  int port() const { return port_; }

  // Creates another empty database and returns its URL, so tests can start clean.
  std::string create_database(const std::string& name);

 private:
  // Runs a server binary (as the postgres user when we are root); returns its exit status
  // and leaves its output in `log`.
  int run(const std::string& program, const std::vector<std::string>& args,
          const std::string& log) const;
  std::string url_for(const std::string& database) const;
  void stop() noexcept;

  std::string bin_;
  std::string dir_;
  std::string data_;
  bool as_postgres_user_ = false;
  bool running_ = false;
  int port_ = 0;
  std::string url_;
};

// The cluster shared by every suite of a test binary: started on first use, stopped at exit.
// A failure to start is remembered and rethrown to each caller, so every test that needs
// PostgreSQL fails with the reason instead of running initdb again.
PostgresCluster& shared_cluster();

}  // namespace slmhub::test
