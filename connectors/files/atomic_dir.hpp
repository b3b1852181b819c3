// Publishing an export's files so a reader of the directory sees either the previous complete
// set or the new complete set, never a mix or a half-written file, even when the process is
// killed or the machine loses power half-way (POSIX rename(2) and Linux renameat2(2)).
#pragma once

#include <filesystem>
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
// fsyncs each file and the directory, then moves it into place with rename(2). When `target`
// already exists: if every file is byte-identical and there are no others, nothing is written
// and it returns false ("unchanged"); otherwise the new directory replaces the old one
// atomically with renameat2(RENAME_EXCHANGE) and the old one is removed. Leftover
// ".<target-name>.partial-*" directories (a run killed half-way) are removed first, so two
// publishers of one target must not run at once. `target`'s parent is created when missing.
//
// Throws std::invalid_argument for a bad or duplicate file name; std::runtime_error naming the
// path and the system's reason on any failure (including a `target` that exists and is not a
// directory), leaving no partial directory behind and the previous `target` as it was.
// Returns true when it wrote.
bool publish_directory(const std::filesystem::path& target, const std::vector<FileEntry>& files);

}  // namespace slmhub::files
