#include "signature.hpp"

#include "slmhub/digest.hpp"

namespace slmhub::servicenow {

std::string hmac_sha256_base64(std::string_view key, std::string_view message) {
  return base64_encode(hmac_sha256(key, message));
}

}  // namespace slmhub::servicenow
