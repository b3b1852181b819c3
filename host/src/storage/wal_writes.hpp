// SQLite writes each WAL frame with two system calls, its 24-byte header and then its page,
// so a commit of twelve pages costs twenty-four pwrite calls. On a virtual machine a system
// call costs microseconds (24 of them: ~45 µs, one call with the same bytes: ~6 µs), and the
// commit runs on the one writer every durable request waits for.
//
// install_wal_gathering() registers, as the process's default SQLite VFS, a thin layer over
// the platform's VFS that gathers the consecutive writes to a WAL file and writes them with
// one call: at the end of each commit (the page of a frame whose header marks a commit),
// before any read, sync, truncation, size query or file control of that file, when a write
// does not continue the gathered bytes, and every 1 MiB. Nothing a commit wrote is held back
// once the commit's last write returns, so the WAL index never names a frame that is not in
// the file, and a commit that returned survives a crash of the process exactly as before.
// Every other file goes to the platform's VFS untouched.
#pragma once

namespace slmhub::host {

// Idempotent; call before opening the first SQLite connection. First checks on a scratch
// database that this SQLite's commits leave nothing gathered; when they do not (a SQLite that
// writes frames differently), or the check cannot run, the platform's VFS stays the default.
// True when gathering is on.
bool install_wal_gathering();

}  // namespace slmhub::host
