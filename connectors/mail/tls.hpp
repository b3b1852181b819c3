// Client-side TLS for the mail protocols (SMTP, POP3): one way to set up a verified
// connection, so no client can drift into trusting what it should not. The server's chain is
// checked against the system's CAs plus an optional CA file, and its name by OpenSSL during
// the handshake; there is no switch to turn either off.
#pragma once

#include <Poco/Net/Context.h>

#include <string>

namespace slmhub::mail {

// A TLS 1.2+ client context that verifies the chain (system CAs and `ca_file`, when not empty)
// and that the certificate names `host` (an IP address against iPAddress entries, a name
// against dNSName entries without partial wildcards). `what` starts every error message
// ("SMTP settings"). Throws std::invalid_argument when the CA file cannot be read or used or
// `host` cannot be checked.
Poco::Net::Context::Ptr make_verified_client_context(const std::string& host,
                                                     const std::string& ca_file,
                                                     const std::string& what);

}  // namespace slmhub::mail
