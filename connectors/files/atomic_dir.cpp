#include "atomic_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace slmhub::files {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int error) {
  throw WriteError("publish_directory: cannot " + what + " " + path.string() + ": " +
                   std::system_category().message(error));
}

int rename_exchange(const fs::path& from, const fs::path& to) {
#ifdef RENAME_EXCHANGE
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE);
#else
  // glibc before 2.28 does not declare renameat2; the kernel has it since 3.15.
  constexpr unsigned kRenameExchange = 1U << 1;
  return static_cast<int>(
      ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), kRenameExchange));
#endif
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and returns close(2)'s errno (0 when it succeeded): on NFS a failed write can
  // first show up here.
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

void sync_directory(const fs::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) fail("fsync directory", dir, errno);
  if (const int error = fd.close(); error != 0) fail("close directory", dir, error);
}

void write_file(const fs::path& path, const std::string& content) {
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (fd.get() < 0) fail("create", path, errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  if (const int error = fd.close(); error != 0) fail("close", path, error);
}

// `path` is a regular file (not a symlink) holding exactly `expected`.
bool has_content(const fs::path& path, const std::string& expected) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return false;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::size_t>(st.st_size) != expected.size()) {
    return false;
  }
  std::string buffer(expected.size() + 1, '\0');  // one more byte to see a file that grew
  std::size_t done = 0;
  while (done < buffer.size()) {
    const ssize_t n = ::read(fd.get(), buffer.data() + done, buffer.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done == expected.size() && buffer.compare(0, done, expected) == 0;
}

// `dir` holds exactly `files`, byte for byte, and nothing else.
bool holds_exactly(const fs::path& dir, const std::map<std::string, const std::string*>& files) {
  std::error_code ec;
  std::size_t seen = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto found = files.find(it->path().filename().string());
    if (found == files.end() || !has_content(it->path(), *found->second)) return false;
    ++seen;
  }
  return !ec && seen == files.size();
}

void remove_stale(const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(prefix)) stale.push_back(it->path());
  }
  if (ec) fail("list", parent, ec.value());
  for (const fs::path& path : stale) {
    fs::remove_all(path, ec);
    if (ec) fail("remove the stale", path, ec.value());
  }
}

}  // namespace

namespace {

void check_file_name(const std::string& name, const fs::path& target) {
  if (name.empty() || name == "." || name == ".." ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    throw std::invalid_argument("publish_directory: file name \"" + name + "\" for " +
                                target.string() +
                                " is not a plain file name (no '/', not empty, '.' or '..')");
  }
}

}  // namespace

StagedDirectory::StagedDirectory(const fs::path& target) : target_(target) {
  // "out/2027-01/" names the directory "out/2027-01".
  path_ = target.has_filename() ? target : target.parent_path();
  const std::string name = path_.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw std::invalid_argument("publish_directory: target \"" + target.string() +
                                "\" does not name a directory to create");
  }
  const fs::path parent = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail("create directory", parent, ec.value());
  // One publisher per parent directory at a time (a server and a command line exporting into
  // one place): the lock is the directory's own, released when the descriptor closes.
  lock_ = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_ < 0) fail("open directory", parent, errno);
  if (::flock(lock_, LOCK_EX) != 0) {
    const int error = errno;
    ::close(lock_);
    fail("lock", parent, error);
  }
  const std::string prefix = "." + name + ".partial-";
  try {
    remove_stale(parent, prefix);
    const fs::file_status existing = fs::symlink_status(path_, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) fail("inspect", path_, ec.value());
    replace_ = fs::exists(existing);
    if (replace_ && !fs::is_directory(existing)) fail("replace", path_, ENOTDIR);
  } catch (...) {
    ::close(lock_);
    throw;
  }
  parent_ = parent;
  partial_ = parent / (prefix + std::to_string(::getpid()));
  // Made now, not with the first file: a place that cannot take the files fails before a
  // caller does anything it cannot take back (an export finalises the month it writes).
  if (::mkdir(partial_.c_str(), 0777) != 0) {
    const int error = errno;
    ::close(lock_);
    fail("create directory", partial_, error);
  }
  created_ = true;
}

StagedDirectory::~StagedDirectory() {
  if (created_ && !committed_) {
    std::error_code ec;
    fs::remove_all(partial_, ec);  // best effort: the next run removes it otherwise
  }
  ::close(lock_);
}

bool StagedDirectory::target_holds(const std::vector<FileEntry>& files) const {
  if (!replace_) return false;
  std::map<std::string, const std::string*> by_name;
  for (const FileEntry& file : files) by_name.emplace(file.name, &file.content);
  return holds_exactly(path_, by_name);
}

void StagedDirectory::add(const FileEntry& file) {
  check_file_name(file.name, target_);
  if (committed_)
    throw std::logic_error("publish_directory: " + target_.string() + " is committed");
  if (!created_) {
    if (::mkdir(partial_.c_str(), 0777) != 0) fail("create directory", partial_, errno);
    created_ = true;
  }
  if (!names_.insert(file.name).second) {
    throw std::invalid_argument("publish_directory: file name \"" + file.name + "\" for " +
                                target_.string() + " is given twice");
  }
  write_file(partial_ / file.name, file.content);
}

void StagedDirectory::clear() {
  if (!created_) return;
  std::error_code ec;
  fs::remove_all(partial_, ec);
  if (ec) fail("remove", partial_, ec.value());
  created_ = false;
  names_.clear();
}

void StagedDirectory::commit() {
  if (!created_) {
    if (::mkdir(partial_.c_str(), 0777) != 0) fail("create directory", partial_, errno);
    created_ = true;
  }
  // One syncfs(2) for the whole set rather than an fsync per file: each fsync is a device
  // flush, and ten thousand of them cost seconds. Since Linux 5.8 it reports the files'
  // write-back errors. Everything is on disk before the rename makes it visible.
  {
    FileDescriptor fd(::open(partial_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) fail("open directory", partial_, errno);
    if (::syncfs(fd.get()) != 0) fail("sync the file system of", partial_, errno);
  }
  sync_directory(partial_);
  if (replace_) {
    if (rename_exchange(partial_, path_) != 0)
      fail("exchange " + partial_.string() + " with", path_, errno);
  } else if (::rename(partial_.c_str(), path_.c_str()) != 0) {
    fail("rename " + partial_.string() + " to", path_, errno);
  }
  committed_ = true;
  // The rename itself is durable once the parent's entry is.
  sync_directory(parent_);
  if (replace_) {
    std::error_code ec;
    fs::remove_all(partial_, ec);  // now the previous copy
    if (ec) fail("remove the previous copy", partial_, ec.value());
  }
}

bool publish_directory(const fs::path& target, const std::vector<FileEntry>& files) {
  std::set<std::string> names;
  for (const FileEntry& file : files) {
    check_file_name(file.name, target);
    if (!names.insert(file.name).second) {
      throw std::invalid_argument("publish_directory: file name \"" + file.name + "\" for " +
                                  target.string() + " is given twice");
    }
  }
  StagedDirectory staged(target);
  if (staged.target_holds(files)) return false;
  for (const FileEntry& file : files) staged.add(file);
  staged.commit();
  return true;
}

}  // namespace slmhub::files
