#include "storage/page_cache.hpp"

#include <sqlite3.h>
#include <sys/mman.h>

#include <mutex>

namespace slmhub::host {

bool install_page_cache_region(std::size_t bytes) {
  static bool installed = false;
  static std::once_flag once;
  std::call_once(once, [bytes] {
    int header = 0;
    if (sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &header) != SQLITE_OK) return;
    // Slots fit the default 4 KiB page and its cache header; databases with larger pages
    // simply use malloc.
    const std::size_t slot = (4096 + static_cast<std::size_t>(header) + 7) & ~std::size_t{7};
    const std::size_t slots = bytes / slot;
    if (slots == 0) return;
    void* region =
        mmap(nullptr, slots * slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) return;
    // Advice only: without transparent huge pages the region is faulted 4 KiB at a time, as
    // malloc's memory would have been, once, when SQLite threads its free list through it.
    madvise(region, slots * slot, MADV_HUGEPAGE);
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, region, static_cast<int>(slot),
                       static_cast<int>(slots)) != SQLITE_OK) {
      munmap(region, slots * slot);
      return;
    }
    installed = true;  // the region lives as long as the process: SQLite never lets go of it
  });
  return installed;
}

}  // namespace slmhub::host
