// Publishing an export's files so a reader of the directory sees either the previous complete
// set or the new complete set, never a mix or a half-written file, even when the process is
// killed or the machine loses power half-way (POSIX rename(2) and Linux renameat2(2)).
#pragma once

#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace slmhub::files {

// A file or directory could not be written (the message names the path and the reason).
struct WriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FileEntry {
  std::string name;  // a plain file name: no '/', not "", "." or ".."
  std::string content;
};

// Writes every file into a hidden sibling directory of `target` (".<target-name>.partial-<pid>"),
// syncs them to disk (one syncfs(2)) and the directory, then moves it into place with rename(2).
// When `target`
// already exists: if every file is byte-identical and there are no others, nothing is written
// and it returns false ("unchanged"); otherwise the new directory replaces the old one
// atomically with renameat2(RENAME_EXCHANGE) and the old one is removed. Leftover
// ".<target-name>.partial-*" directories (a run killed half-way) are removed first; publishers
// into one parent directory take turns (flock on the parent). `target`'s parent is created when
// missing.
//
// Throws std::invalid_argument for a bad or duplicate file name; WriteError naming the
// path and the system's reason on any failure (including a `target` that exists and is not a
// directory), leaving no partial directory behind and the previous `target` as it was.
// Returns true when it wrote.
bool publish_directory(const std::filesystem::path& target, const std::vector<FileEntry>& files);

// The same publication for a writer that has the files one at a time (an export that writes
// each invoice as it is finalised): construction takes the parent's lock, removes stale
// partial directories and creates the hidden one (so a place that cannot take the files fails
// before the writer starts, WriteError naming it); add() writes a file into the hidden directory;
// commit() syncs and renames it into place (exchanging it with an existing target, then removed).
// Destroyed without commit(), it removes what it staged: the target never shows a partial set. One
// thread at a time.
class StagedDirectory {
 public:
  explicit StagedDirectory(const std::filesystem::path& target);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  // The target exists and holds exactly `files`, byte for byte.
  bool target_holds(const std::vector<FileEntry>& files) const;
  void add(const FileEntry& file);  // std::invalid_argument: a bad or repeated name
  void clear();                     // drops every file added so far
  void commit();

 private:
  std::filesystem::path target_, path_, parent_, partial_;
  std::set<std::string> names_;
  int lock_ = -1;
  bool replace_ = false;
  bool created_ = false;
  bool committed_ = false;
};

}  // namespace slmhub::files
