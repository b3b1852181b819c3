// Webhook signatures as ServiceNow scripts make them: `GlideCertificateEncryption.generateMac`
// with HmacSHA256, base64 in a custom header (../shared/SERVICENOW.md). Verifying one means
// recomputing it and comparing in constant time, so a caller cannot learn the right value a
// byte at a time from response times.
#pragma once

#include <string>
#include <string_view>

#include "slmhub/digest.hpp"

namespace slmhub::servicenow {

// base64(HMAC-SHA256(key, message)), standard alphabet with padding.
std::string hmac_sha256_base64(std::string_view key, std::string_view message);

using slmhub::constant_time_equal;

}  // namespace slmhub::servicenow
