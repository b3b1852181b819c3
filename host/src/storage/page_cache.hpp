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

#include <cstddef>

namespace slmhub::host {

// Idempotent; must run before SQLite initializes (before the first connection or VFS call),
// otherwise SQLite refuses the setting and this returns false. The region's size is what
// the process keeps resident from then on. False also when the memory cannot be mapped.
bool install_page_cache_region(std::size_t bytes);

}  // namespace slmhub::host
