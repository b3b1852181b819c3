// Small text checks the mail protocol clients share: what a setting may contain, how a
// server's reply is quoted in an error, and the server part every client validates alike.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace slmhub::mail {

// A space, a control character or DEL anywhere in `text` (not allowed in a host, a user
// name or a protocol word).
bool has_space_or_control(std::string_view text);

// `text` for an error message: printable ASCII only (others as '?'), cut after `max`
// characters with "...".
std::string printable(std::string_view text, std::size_t max = 512);

std::string upper(std::string_view text);

// Takes the next complete line of a protocol's reply buffer, `buffer` read from `begin` on:
// the line without its LF or CRLF, `begin` moved past it. Without a complete line it drops the
// consumed prefix (so `buffer` can be appended to) and returns nullopt; with more than
// `max_line` bytes waiting and still no line break it throws std::runtime_error(`too_long`).
std::optional<std::string> take_line(std::string& buffer, std::size_t& begin, std::size_t max_line,
                                     const std::string& too_long);

// "host:port", how errors name a server.
std::string endpoint(const std::string& host, int port);

// The checks every client's settings share; throws std::invalid_argument("<what>: ...")
// naming the first that fails: a host without spaces or control characters, a port in
// 1-65535, a positive timeout.
void check_server_settings(const std::string& what, const std::string& host, int port,
                           int timeout_ms);

}  // namespace slmhub::mail
