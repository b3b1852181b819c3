// Large clean-ups (retention) in bounded transactions, so that they never hold the single
// writer, and the requests, publishers and senders waiting on it, for long.
#pragma once

#include <cstdint>
#include <string_view>

#include "slmhub/store.hpp"

namespace slmhub {

// Rows a clean-up changes a transaction: enough that a month of a busy instance's rows goes in
// a few dozen commits, few enough that a commit waiting behind one waits milliseconds.
inline constexpr std::int64_t kCleanupBatch = 10000;

// Runs `sql`, a statement that changes at most `batch` rows at a time (`batch` is bound
// after `params`, as its LIMIT), once a transaction until a run changes fewer; returns the
// rows changed in all. Each run must leave the rows it changed out of the next one.
std::int64_t exec_in_batches(Store& store, std::string_view sql, Params params,
                             std::int64_t batch = kCleanupBatch);

}  // namespace slmhub
