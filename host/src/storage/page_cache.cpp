#include "storage/page_cache.hpp"

#include <sqlite3.h>
#include <sys/mman.h>

#include <algorithm>
#include <mutex>
#include <new>

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

namespace {

// The methods of the cache being wrapped (SQLite's default, pcache1), and the wrapper's.
sqlite3_pcache_methods2 inner_methods{};
sqlite3_pcache_methods2 bounded_methods{};

// One per sqlite3_pcache SQLite creates. Page numbers are unique within a cache, so at most
// one page has the number `top`; `top` bounds every page and `rest` every page but that one.
struct BoundedCache {
  sqlite3_pcache* inner;
  unsigned top = 0;
  unsigned rest = 0;

  void holds(unsigned key) {
    if (key > top) {
      rest = std::max(rest, top);
      top = key;
    } else if (key < top) {
      rest = std::max(rest, key);
    }
  }
};

BoundedCache* bounded(sqlite3_pcache* cache) { return reinterpret_cast<BoundedCache*>(cache); }

sqlite3_pcache* create(int page_size, int extra_size, int purgeable) {
  sqlite3_pcache* inner = inner_methods.xCreate(page_size, extra_size, purgeable);
  if (inner == nullptr) return nullptr;
  auto* cache = new (std::nothrow) BoundedCache{inner};
  if (cache == nullptr) {
    inner_methods.xDestroy(inner);
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(cache);
}

void set_size(sqlite3_pcache* cache, int pages) {
  inner_methods.xCachesize(bounded(cache)->inner, pages);
}

int page_count(sqlite3_pcache* cache) { return inner_methods.xPagecount(bounded(cache)->inner); }

sqlite3_pcache_page* fetch(sqlite3_pcache* cache, unsigned key, int create_flag) {
  BoundedCache* self = bounded(cache);
  sqlite3_pcache_page* page = inner_methods.xFetch(self->inner, key, create_flag);
  if (page != nullptr) self->holds(key);
  return page;
}

void unpin(sqlite3_pcache* cache, sqlite3_pcache_page* page, int discard) {
  inner_methods.xUnpin(bounded(cache)->inner, page, discard);
}

void rekey(sqlite3_pcache* cache, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  BoundedCache* self = bounded(cache);
  inner_methods.xRekey(self->inner, page, old_key, new_key);
  if (old_key == self->top) {
    // The one page at `top` moved: every page is now at most `rest`, or at its new number.
    self->top = std::max(self->rest, new_key);
  } else {
    self->holds(new_key);
  }
}

void truncate(sqlite3_pcache* cache, unsigned limit) {
  BoundedCache* self = bounded(cache);
  if (limit > self->top) return;  // no page at or past the limit
  inner_methods.xTruncate(self->inner, limit);
  const unsigned below = limit == 0 ? 0 : limit - 1;
  self->top = std::min(self->top, below);
  self->rest = std::min(self->rest, below);
}

void destroy(sqlite3_pcache* cache) {
  BoundedCache* self = bounded(cache);
  inner_methods.xDestroy(self->inner);
  delete self;
}

void shrink(sqlite3_pcache* cache) { inner_methods.xShrink(bounded(cache)->inner); }

}  // namespace

bool install_page_cache_bounds() {
  static bool installed = false;
  static std::once_flag once;
  std::call_once(once, [] {
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner_methods) != SQLITE_OK) return;
    if (inner_methods.xCreate == nullptr || inner_methods.xTruncate == nullptr) return;
    bounded_methods = inner_methods;
    bounded_methods.xCreate = create;
    bounded_methods.xCachesize = set_size;
    bounded_methods.xPagecount = page_count;
    bounded_methods.xFetch = fetch;
    bounded_methods.xUnpin = unpin;
    bounded_methods.xRekey = rekey;
    bounded_methods.xTruncate = truncate;
    bounded_methods.xDestroy = destroy;
    bounded_methods.xShrink = shrink;
    installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &bounded_methods) == SQLITE_OK;
  });
  return installed;
}

const sqlite3_pcache_methods2* bounded_page_cache_methods() {
  return install_page_cache_bounds() ? &bounded_methods : nullptr;
}

}  // namespace slmhub::host
