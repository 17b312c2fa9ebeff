#!/usr/bin/env python3
"""tlsua.py: hand-made SIP over TCP or TLS for checks the sipsctl UA does not
do: RFC 5626 CRLF keep-alives byte for byte, and a Via with RFC 5923 ;alias
sent with or without a client certificate, then listening on that connection
for requests the server sends back. Every wait is bounded; each subcommand
prints result lines and exits 0 when its expectation held."""
import argparse
import os
import secrets
import socket
import ssl
import sys
import time


def connect(a):
    """A TCP connection, wrapped in TLS (SNI a.sni, trusting a.ca, optional
    client certificate) when a.ca is given. The server is authenticated by
    chain only: the name check is not under test here."""
    raw = socket.create_connection((a.host, a.port), timeout=3)
    if not a.ca:
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.ca)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    return ctx.wrap_socket(raw, server_hostname=a.sni)


def request(method, ruri, via_proto, sent_by, params, from_uri="sip:probe@example.com"):
    branch = "z9hG4bK" + secrets.token_hex(8)
    tag = secrets.token_hex(4)
    return (
        f"{method} {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via_proto} {sent_by};branch={branch}{params}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <{from_uri}>;tag={tag}\r\n"
        f"To: <{ruri}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@tlsua\r\n"
        f"CSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Reader:
    """Reads framed SIP messages and bare CRLFs off a stream, bounded."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except OSError:
            raise EOFError
        if not chunk:
            raise EOFError
        self.buf += chunk
        return True

    def message(self, timeout):
        """The next SIP message (bytes), or None on timeout. CRLFs before
        it are skipped and counted in self.skipped_crlf."""
        deadline = time.time() + timeout
        self.skipped_crlf = 0
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
                self.skipped_crlf += 1
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("latin-1")
                clen = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() in ("content-length", "l"):
                        clen = int(value.strip())
                total = end + 4 + clen
                if len(self.buf) >= total:
                    msg, self.buf = self.buf[:total], self.buf[total:]
                    return msg
            if not self.fill(deadline):
                return None


def first_line(msg):
    return msg.split(b"\r\n", 1)[0].decode("latin-1")


def cmd_crlf(a):
    """RFC 5626 §3.5.1 / spec rule 18: a double CRLF is answered with exactly
    one CRLF (nothing more), also right after a message; a bare CRLF between
    messages is tolerated and not answered; the stream stays usable."""
    s = connect(a)
    proto = "TLS" if a.ca else "TCP"
    tls = f" version={s.version()}" if a.ca else ""
    ok = True
    # 1. A double CRLF on a fresh connection: exactly "\r\n" comes back.
    s.sendall(b"\r\n\r\n")
    r = Reader(s)
    deadline = time.time() + 3
    while len(r.buf) < 2 and r.fill(deadline):
        pass
    quiet_until = time.time() + 0.5
    while r.fill(quiet_until):
        pass
    good = r.buf == b"\r\n"
    ok &= good
    print(f"crlf {proto}{tls}: ping got={r.buf!r} exact={good}")
    r.buf = b""
    # 2. A bare CRLF then OPTIONS: only the 200 comes back.
    sent_by = "%s:%d" % s.getsockname()[:2]
    s.sendall(b"\r\n" + request("OPTIONS", a.ruri, proto, sent_by, ";rport"))
    m = r.message(3)
    good = m is not None and m.startswith(b"SIP/2.0 200") and r.skipped_crlf == 0
    ok &= good
    print(f"crlf {proto}: bare CRLF then OPTIONS: got={first_line(m) if m else None!r} "
          f"crlf_before={r.skipped_crlf} ok={good}")
    # 3. OPTIONS and a double CRLF in one write: the 200, then one CRLF.
    s.sendall(request("OPTIONS", a.ruri, proto, sent_by, ";rport") + b"\r\n\r\n")
    m = r.message(3)
    deadline = time.time() + 3
    while len(r.buf) < 2 and r.fill(deadline):
        pass
    quiet_until = time.time() + 0.5
    while r.fill(quiet_until):
        pass
    good = m is not None and m.startswith(b"SIP/2.0 200") and r.buf == b"\r\n"
    ok &= good
    print(f"crlf {proto}: OPTIONS+ping: got={first_line(m) if m else None!r} then={r.buf!r} ok={good}")
    s.close()
    return 0 if ok else 1


def cmd_alias(a):
    """Send OPTIONS with Via sent-by a.sent_by and ;alias, print its answer,
    then keep the connection open up to a.hold seconds (or until the file
    a.until exists) and print every
    request the server sends down it (answered 486 so that it ends). With
    --expect-none / --expect-request the exit status says whether a request
    came back on this connection."""
    s = connect(a)
    proto = "TLS" if a.ca else "TCP"
    peer_cert = "client-cert" if a.cert else "no-client-cert"
    s.sendall(request("OPTIONS", a.ruri, proto, a.sent_by, ";alias", a.from_uri))
    r = Reader(s)
    try:
        m = r.message(3)
    except EOFError:
        m = None
    print(f"alias {proto} {peer_cert}: OPTIONS answered {first_line(m) if m else None!r}")
    sys.stdout.flush()
    got = []
    deadline = time.time() + a.hold
    while time.time() < deadline:
        if a.until and os.path.exists(a.until):
            break
        try:
            m = r.message(min(0.2, max(0.01, deadline - time.time())))
        except EOFError:
            print(f"alias {proto} {peer_cert}: connection closed by the server")
            break
        if m is None:
            continue
        if m.startswith(b"SIP/2.0"):
            continue
        line = first_line(m)
        got.append(line)
        print(f"alias {proto} {peer_cert}: request came back on this connection: {line}")
        sys.stdout.flush()
        if not line.startswith("ACK"):
            s.sendall(busy(m))
        if a.expect_request:
            break
    s.close()
    print(f"alias {proto} {peer_cert}: requests received={len(got)}")
    if a.expect_none:
        return 0 if not got else 1
    if a.expect_request:
        return 0 if got else 1
    return 0


def busy(req):
    """A 486 for `req`, echoing the headers RFC 3261 §8.2.6.2 names."""
    head = req.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    keep = []
    for line in head[1:]:
        name = line.partition(":")[0].strip().lower()
        if name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            keep.append(line)
        elif name in ("to", "t"):
            keep.append(line + ";tag=" + secrets.token_hex(4))
    return ("SIP/2.0 486 Busy Here\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("crlf", "alias"):
        x = sub.add_parser(name)
        x.add_argument("host")
        x.add_argument("port", type=int)
        x.add_argument("--ca", help="TLS, trusting this CA (plain TCP without it)")
        x.add_argument("--sni", default=None)
        x.add_argument("--cert")
        x.add_argument("--key")
        x.add_argument("--ruri", default="sip:example.net")
    x = sub.choices["alias"]
    x.add_argument("--sent-by", required=True, help="Via sent-by HOST:PORT offered as alias")
    x.add_argument("--from-uri", default="sip:probe@example.com")
    x.add_argument("--hold", type=float, default=0.0)
    x.add_argument("--until", help="stop holding once this file exists")
    x.add_argument("--expect-none", action="store_true")
    x.add_argument("--expect-request", action="store_true")
    a = p.parse_args()
    try:
        return {"crlf": cmd_crlf, "alias": cmd_alias}[a.cmd](a)
    except (OSError, EOFError, ssl.SSLError) as e:
        print(f"{a.cmd}: error: {e!r}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
