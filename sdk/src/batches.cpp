#include "slmhub/batches.hpp"

#include <utility>

namespace slmhub {

std::int64_t exec_in_batches(Store& store, std::string_view sql, Params params,
                             std::int64_t batch) {
  params.emplace_back(batch);
  std::int64_t changed = 0;
  for (;;) {
    std::int64_t run = 0;
    store.transact([&](Tx& tx) { run = tx.exec(sql, params); });
    changed += run;
    if (run < batch) return changed;
  }
}

}  // namespace slmhub
