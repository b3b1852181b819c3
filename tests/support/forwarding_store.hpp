// A Store that hands every call on to another: tests derive from it to make one call fail as a
// real store can (busy, an answer lost), without a store that really does.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "slmhub/store.hpp"

namespace slmhub::test {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& store) : store_(store) {}
  void migrate(std::string_view owner, const std::vector<Migration>& migrations) override {
    store_.migrate(owner, migrations);
  }
  void transact(const std::function<void(Tx&)>& work) override { store_.transact(work); }
  std::vector<Row> query(std::string_view sql, const Params& params) override {
    return store_.query(sql, params);
  }
  Dialect dialect() const override { return store_.dialect(); }

 private:
  Store& store_;
};

}  // namespace slmhub::test
