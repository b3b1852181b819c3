#include "storage/wal_writes.hpp"

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace slmhub::host {
namespace {

constexpr std::size_t kFlushBytes = 1 << 20;
// The unix VFS writes at most 128 KiB - 1 bytes per call (it masks the length with 0x1ffff).
constexpr std::size_t kWriteBytes = 64 * 1024;
constexpr int kFrameHeaderBytes = 24;

sqlite3_vfs* platform = nullptr;  // the VFS that was the default before ours
sqlite3_vfs gathering{};

// A WAL file: ours first, then the platform's own file object at kRealOffset.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real = nullptr;
  std::string pending;  // written by SQLite, not yet by us
  sqlite3_int64 pending_at = 0;
  bool commit_page_next = false;  // the last write was the header of a commit frame
};
constexpr std::size_t kRealOffset = (sizeof(WalFile) + 15) / 16 * 16;

WalFile* wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }
const sqlite3_io_methods& real_methods(WalFile* f) { return *f->real->pMethods; }

int flush(WalFile* f) {
  int rc = SQLITE_OK;
  for (std::size_t at = 0; at < f->pending.size() && rc == SQLITE_OK; at += kWriteBytes) {
    const std::size_t n = std::min(kWriteBytes, f->pending.size() - at);
    rc = real_methods(f).xWrite(f->real, f->pending.data() + at, static_cast<int>(n),
                                f->pending_at + static_cast<sqlite3_int64>(at));
  }
  f->pending.clear();  // keeps its capacity for the next commit
  return rc;
}

int wal_close(sqlite3_file* file) {
  WalFile* f = wal(file);
  const int flushed = flush(f);
  const int closed = real_methods(f).xClose(f->real);
  f->~WalFile();
  return flushed != SQLITE_OK ? flushed : closed;
}

int wal_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xRead(f->real, out, amount, offset);
}

int wal_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = wal(file);
  if (!f->pending.empty() &&
      offset != f->pending_at + static_cast<sqlite3_int64>(f->pending.size())) {
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  if (f->pending.empty()) f->pending_at = offset;
  f->pending.append(static_cast<const char*>(data), static_cast<std::size_t>(amount));
  // A frame header's bytes 4-7 are the database size after the commit in a commit frame,
  // zero otherwise; the page written after such a header is the commit's last write.
  const bool ends_commit = f->commit_page_next && amount != kFrameHeaderBytes;
  const auto* bytes = static_cast<const unsigned char*>(data);
  f->commit_page_next =
      amount == kFrameHeaderBytes && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  if (ends_commit || f->pending.size() >= kFlushBytes) return flush(f);
  return SQLITE_OK;
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xTruncate(f->real, size);
}

int wal_sync(sqlite3_file* file, int flags) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xSync(f->real, flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xFileSize(f->real, size);
}

int wal_lock(sqlite3_file* file, int level) {
  return real_methods(wal(file)).xLock(wal(file)->real, level);
}
int wal_unlock(sqlite3_file* file, int level) {
  return real_methods(wal(file)).xUnlock(wal(file)->real, level);
}
int wal_check_reserved_lock(sqlite3_file* file, int* out) {
  return real_methods(wal(file)).xCheckReservedLock(wal(file)->real, out);
}

int wal_file_control(sqlite3_file* file, int op, void* arg) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xFileControl(f->real, op, arg);
}

int wal_sector_size(sqlite3_file* file) {
  return real_methods(wal(file)).xSectorSize(wal(file)->real);
}
int wal_device_characteristics(sqlite3_file* file) {
  return real_methods(wal(file)).xDeviceCharacteristics(wal(file)->real);
}

// A WAL file has no shared memory and is never memory-mapped; these only forward.
int wal_shm_map(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
  return real_methods(wal(file)).xShmMap(wal(file)->real, page, size, extend, out);
}
int wal_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  return real_methods(wal(file)).xShmLock(wal(file)->real, offset, n, flags);
}
void wal_shm_barrier(sqlite3_file* file) { real_methods(wal(file)).xShmBarrier(wal(file)->real); }
int wal_shm_unmap(sqlite3_file* file, int delete_flag) {
  return real_methods(wal(file)).xShmUnmap(wal(file)->real, delete_flag);
}
int wal_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f).xFetch(f->real, offset, amount, out);
}
int wal_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return real_methods(wal(file)).xUnfetch(wal(file)->real, offset, page);
}

const sqlite3_io_methods kWalMethods = {3,
                                        wal_close,
                                        wal_read,
                                        wal_write,
                                        wal_truncate,
                                        wal_sync,
                                        wal_file_size,
                                        wal_lock,
                                        wal_unlock,
                                        wal_check_reserved_lock,
                                        wal_file_control,
                                        wal_sector_size,
                                        wal_device_characteristics,
                                        wal_shm_map,
                                        wal_shm_lock,
                                        wal_shm_barrier,
                                        wal_shm_unmap,
                                        wal_fetch,
                                        wal_unfetch};

int vfs_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  // Any other file is the platform's own object, at the start of the space SQLite gave us.
  if ((flags & SQLITE_OPEN_WAL) == 0)
    return platform->xOpen(platform, name, file, flags, out_flags);
  auto* f = new (file) WalFile{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  f->real->pMethods = nullptr;
  const int rc = platform->xOpen(platform, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    f->~WalFile();
    file->pMethods = nullptr;  // SQLite must not call our xClose
    return rc;
  }
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

// The rest of the VFS is the platform's.
int vfs_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return platform->xDelete(platform, name, sync_dir);
}
int vfs_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return platform->xAccess(platform, name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return platform->xFullPathname(platform, name, size, out);
}
void* vfs_dl_open(sqlite3_vfs*, const char* name) { return platform->xDlOpen(platform, name); }
void vfs_dl_error(sqlite3_vfs*, int size, char* out) { platform->xDlError(platform, size, out); }
void (*vfs_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return platform->xDlSym(platform, handle, symbol);
}
void vfs_dl_close(sqlite3_vfs*, void* handle) { platform->xDlClose(platform, handle); }
int vfs_randomness(sqlite3_vfs*, int size, char* out) {
  return platform->xRandomness(platform, size, out);
}
int vfs_sleep(sqlite3_vfs*, int micros) { return platform->xSleep(platform, micros); }
int vfs_current_time(sqlite3_vfs*, double* out) { return platform->xCurrentTime(platform, out); }
int vfs_get_last_error(sqlite3_vfs*, int size, char* out) {
  return platform->xGetLastError(platform, size, out);
}
int vfs_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return platform->xCurrentTimeInt64(platform, out);
}
int vfs_set_system_call(sqlite3_vfs*, const char* name, sqlite3_syscall_ptr call) {
  return platform->xSetSystemCall(platform, name, call);
}
sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs*, const char* name) {
  return platform->xGetSystemCall(platform, name);
}
const char* vfs_next_system_call(sqlite3_vfs*, const char* name) {
  return platform->xNextSystemCall(platform, name);
}

// Whether this SQLite writes WAL frames the way gathering relies on: a commit's frames leave
// nothing behind, synced or not. Checked on a scratch database before any real one is opened;
// a SQLite that one day writes frames differently gets the platform's VFS, not a lost commit.
bool frames_leave_nothing_behind() {
  std::string dir = (std::filesystem::temp_directory_path() / "slmhub-wal-probe-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) return false;
  bool ok = false;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((dir + "/probe.db").c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      gathering.zName) == SQLITE_OK) {
    const auto run = [&](const char* sql) {
      return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
    };
    const auto nothing_held = [&] {
      sqlite3_file* file = nullptr;
      return sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) == SQLITE_OK &&
             file != nullptr && file->pMethods == &kWalMethods && wal(file)->pending.empty();
    };
    ok = run("PRAGMA journal_mode=WAL") && run("PRAGMA synchronous=NORMAL") &&
         run("CREATE TABLE t(x)") && nothing_held() &&
         run("INSERT INTO t VALUES (randomblob(300000))") && nothing_held() &&
         run("BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (randomblob(9000)); COMMIT") &&
         nothing_held() && run("PRAGMA synchronous=FULL") &&
         run("INSERT INTO t VALUES (randomblob(5000))") && nothing_held();
  }
  sqlite3_close(db);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return ok;
}

}  // namespace

bool install_wal_gathering() {
  static bool installed = false;
  static std::once_flag once;
  std::call_once(once, [] {
    platform = sqlite3_vfs_find(nullptr);
    if (platform == nullptr || platform->iVersion < 3) return;
    gathering.iVersion = 3;
    gathering.szOsFile = static_cast<int>(kRealOffset) + platform->szOsFile;
    gathering.mxPathname = platform->mxPathname;
    gathering.zName = "slmhub-wal-gathering";
    gathering.xOpen = vfs_open;
    gathering.xDelete = vfs_delete;
    gathering.xAccess = vfs_access;
    gathering.xFullPathname = vfs_full_pathname;
    gathering.xDlOpen = vfs_dl_open;
    gathering.xDlError = vfs_dl_error;
    gathering.xDlSym = vfs_dl_sym;
    gathering.xDlClose = vfs_dl_close;
    gathering.xRandomness = vfs_randomness;
    gathering.xSleep = vfs_sleep;
    gathering.xCurrentTime = vfs_current_time;
    gathering.xGetLastError = vfs_get_last_error;
    gathering.xCurrentTimeInt64 = vfs_current_time_int64;
    gathering.xSetSystemCall = vfs_set_system_call;
    gathering.xGetSystemCall = vfs_get_system_call;
    gathering.xNextSystemCall = vfs_next_system_call;
    if (sqlite3_vfs_register(&gathering, 0) != SQLITE_OK) return;
    if (!frames_leave_nothing_behind()) {
      sqlite3_vfs_unregister(&gathering);
      return;
    }
    installed = sqlite3_vfs_register(&gathering, 1) == SQLITE_OK;  // now the default
  });
  return installed;
}

}  // namespace slmhub::host
