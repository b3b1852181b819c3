// `slmhub mailgate`: hands one message from an MTA pipe (Postfix `pipe`, a .forward, procmail)
// to a running server's /api/v1/mail/inbound, like Request Tracker's rt-mailgate. The exit
// status tells the MTA what to do (sysexits.h): 0 delivered, 65 a message the server
// refuses, 75 try again later (the MTA keeps the message), 77 not allowed (bad token).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace slmhub::email {

// Exit status for the HTTP status of the server's answer (0 for a connection failure is
// not possible: that is 75).
int mailgate_exit_status(int http_status);

// The command: args after `mailgate`; reads the message from `in`.
int run_mailgate(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                 std::ostream& err);

}  // namespace slmhub::email
