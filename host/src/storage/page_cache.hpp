// SQLite keeps each connection's page cache in memory it mallocs a page at a time. Fresh heap
// memory is paid for on first touch, one page fault per 4 KiB, and on this kind of virtual
// machine a fault costs ~20 µs: the writer filling its 32 MiB cache after a start spent
// about a sixth of its time faulting (8,000 faults in the first 2,000 mail deliveries).
//
// install_page_cache_region() gives SQLite one region for page buffers instead
// (SQLITE_CONFIG_PAGECACHE), mapped at start with transparent huge pages asked for, so it
// is faulted in 2 MiB at a time. SQLite hands its slots to any connection and falls back to
// malloc when they are all in use, so the region bounds nothing and changes no behaviour;
// it only makes the pages a server uses most cheap to get.
#pragma once

#include <sqlite3.h>

#include <cstddef>

namespace slmhub::host {

// Idempotent; must run before SQLite initializes (before the first connection or VFS call),
// otherwise SQLite refuses the setting and this returns false. The region's size is what
// the process keeps resident from then on. False also when the memory cannot be mapped.
bool install_page_cache_region(std::size_t bytes);

// Every commit ends with SQLite asking its page cache to drop the pages past the end of the
// database. The default cache answers from the highest page number it has ever been given
// and, when that is far past the end, walks every bucket of its hash table. A B-tree
// rebalance parks a page at the number of the 1 GiB lock page (262,145) for a moment while it
// swaps two page numbers, so after most inserts that split a page that bound is stale
// and the commit walks the writer's whole 32 MiB cache (~8,000 pages, one cache miss each):
// a tenth of the writer's time under webhook ingest.
//
// install_page_cache_bounds() wraps SQLite's own cache (whatever SQLITE_CONFIG_GETPCACHE2
// gives, so the region above still serves it) with an exact enough bound per cache: the
// highest page number in use and the highest of all the others, so a page parked at a high
// number and moved back lowers the bound again. A truncation with nothing at or past its
// limit is not passed on; every other call is. Idempotent; must run before SQLite
// initializes, like the region. True when installed.
bool install_page_cache_bounds();

// The methods install_page_cache_bounds() gave SQLite, null when it did not; for tests, which
// drive a cache directly (SQLite refuses to report its methods once it has initialized).
const sqlite3_pcache_methods2* bounded_page_cache_methods();

}  // namespace slmhub::host
