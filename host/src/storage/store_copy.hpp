// Copying a whole store into another database, for `slmhub migrate --to` (moving from the
// embedded SQLite store to PostgreSQL): the target gets the same schema from the same
// migrations, then every row of every table, and the copy commits only when each table's
// row count and checksum read back from the target match the source.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/database.hpp"

namespace slmhub::host {

// One table of the copy as both sides read it. The checksum is the SHA-256 of the sorted
// SHA-256 digests of the rows, so it does not depend on the order either side returns
// rows in, and a row lost, added twice or changed in any column changes it.
struct TableCheck {
  std::string table;
  std::int64_t source_rows = 0;
  std::int64_t target_rows = 0;
  std::string source_sha256;
  std::string target_sha256;
  bool matches() const { return source_rows == target_rows && source_sha256 == target_sha256; }
};

// Why a copy was refused or undone; the target holds no copied row afterwards.
class StoreCopyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Applies every migration `source` was given since it was opened (source.migrations_seen():
// open it the way the server does first) to `target`, then copies every table but
// schema_migrations in one transaction of `target`, sets PostgreSQL's id sequences past the
// copied ids, reads every table back on both sides and commits only when all match.
// Throws StoreCopyError when the target already holds rows, when its schema versions or
// columns differ from the source's, or when a table does not match (the copy is rolled
// back; the target keeps the empty schema, so the command can be run again). `progress`
// is told about each table as it goes.
std::vector<TableCheck> copy_store(Database& source, Database& target,
                                   const std::function<void(const std::string&)>& progress);

}  // namespace slmhub::host
