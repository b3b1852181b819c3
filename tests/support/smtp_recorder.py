#!/usr/bin/python3
"""An SMTP server that records what it receives, for tests of slmhub's outgoing mail.

The server is Debian's aiosmtpd (python3-aiosmtpd), so the client under test speaks to a real
SMTP implementation: EHLO, STARTTLS or implicit TLS, AUTH, SIZE, dot-stuffing. Each accepted
message is written to the output directory as NNNNNN.eml (the bytes received, dot-stuffing
undone) and NNNNNN.json (the envelope and session), the JSON renamed into place last, so a
reader that sees the JSON sees the whole message.

Listens on 127.0.0.1 only. Prints "ready PORT" once it accepts connections; --port 0 (the
default) lets the kernel pick a free port, so there is no race for it. Runs until its stdin
reaches end of file: the test keeps a pipe open and closes it to stop the server, and if the
test process dies the pipe closes with it and the server does not outlive it.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write("smtp_recorder: aiosmtpd is missing; install the Debian package "
                     "python3-aiosmtpd (`make deps`)\n")
    sys.exit(3)


class Recorder:
    """aiosmtpd handler: refuses or defers chosen recipients, records every message."""

    def __init__(self, directory, refuse, tempfail):
        self.directory = directory
        self.refuse = {address.lower() for address in refuse}
        self.tempfail = {address.lower() for address in tempfail}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <%s>: recipient refused by the test" % address
        if address.lower() in self.tempfail:
            return "451 4.3.0 <%s>: try again later (test)" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.directory, "%06d" % self.count)
        content = envelope.original_content
        with open(stem + ".eml.tmp", "wb") as out:
            out.write(content)
        os.rename(stem + ".eml.tmp", stem + ".eml")
        auth = session.auth_data
        record = {
            # aiosmtpd keeps the null reverse-path of a bounce as "<>".
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "helo": session.host_name,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": auth.login.decode("utf-8", "replace")
            if isinstance(auth, LoginPassword) else None,
            # The client's port: messages with the same one came over one connection.
            "peer_port": session.peer[1] if session.peer else 0,
        }
        with open(stem + ".json.tmp", "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(stem + ".json.tmp", stem + ".json")
        return "250 2.0.0 OK recorded as %06d" % self.count


def authenticator(username, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == username.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)
    return check


async def serve(args):
    loop = asyncio.get_running_loop()
    handler = Recorder(args.dir, args.refuse, args.tempfail)
    tls = None
    if args.tls != "none":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    auth = authenticator(args.username, args.password) if args.username else None

    def factory():
        return SMTP(
            handler,
            hostname="recorder.example.org",
            loop=loop,
            tls_context=tls if args.tls == "starttls" else None,
            authenticator=auth,
            auth_require_tls=True,
        )

    server = await loop.create_server(
        factory, host="127.0.0.1", port=args.port,
        ssl=tls if args.tls == "implicit" else None)
    print("ready %d" % server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()
    await server.wait_closed()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True, help="where received messages are written")
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert", help="PEM certificate (with --tls)")
    parser.add_argument("--key", help="PEM private key (with --tls)")
    parser.add_argument("--refuse", action="append", default=[],
                        help="answer 550 to RCPT for this address")
    parser.add_argument("--tempfail", action="append", default=[],
                        help="answer 451 to RCPT for this address")
    parser.add_argument("--username", help="accept AUTH (over TLS only) for this user")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    if args.tls != "none" and not (args.cert and args.key):
        parser.error("--tls %s needs --cert and --key" % args.tls)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
