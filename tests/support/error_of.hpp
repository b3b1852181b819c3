// The message of the exception `f` throws, for tests that assert the exact wording of an
// error; a failure of the test when it throws nothing (or another type than E).
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace slmhub::test {

template <typename E = std::exception, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "(no exception)";
}

}  // namespace slmhub::test
