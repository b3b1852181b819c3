// The libFuzzer entry of one target: tests/fuzz/CMakeLists.txt compiles this file once per
// target with SLMHUB_FUZZ_CHECK naming its check (checks.hpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slmhub::fuzz::SLMHUB_FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
