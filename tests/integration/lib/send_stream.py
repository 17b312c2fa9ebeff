#!/usr/bin/env python3
"""send_stream.py: send RFC 4475 / RFC 5118 torture messages to sipsd over a
stream (TCP, or TLS trusting --ca with SNI example.com), one NEW connection
per message, bytes exact. For each message: read for up to ~1 s and record
the first non-100 status line, or `closed` (sipsd closed or reset the
connection first), or `none`; compare with the expectation; then check
sipsd is alive with a valid OPTIONS on a fresh connection. Prints one
`ok`/`not ok` line per message and `N passed, M failed`; exit 0 when all
held.

    send_stream.py --transport tcp|tls --host H --port P [--ca CA]
                   --leftover FILE [--only a,b] RESPONSES.tsv:DATADIR ...

Expectations come from each RESPONSES.tsv (name, expected, why: the answer
to a message framed as intended; `any` = an answer other than 400/505,
`none` = no answer). STREAM below overrides them where a stream makes the
RFC's datagram answer impossible: there the framing, not the parser,
decides, and `closed` or `none` is what RFC 3261 §18.3 allows.

As in send_udp.py, messages sharing a branch, sent-by and method are one
transaction to a server (RFC 3261 §17.2.3): a message whose key was already
used in this run is not sent but written to LEFTOVER for a fresh sipsd."""
import argparse
import secrets
import socket
import ssl
import sys
import time

from siptxn import txn_key

# name -> (acceptable outcomes, why). Outcomes: a status code, `any`,
# `none` (connection open, nothing said), `closed`.
STREAM = {
    # Content-Length 9999, far more than the octets sent: on a stream the
    # framer must wait for the rest of the body (RFC 4475 §3.1.2.2: "wait
    # for more data, then close on timeout"); within our read window sipsd
    # says nothing, or gives up and closes.
    "clerr": ({"none", "closed"}, "stream: body incomplete, sipsd waits"),
    # Content-Length -999: the stream cannot be framed any further
    # (RFC 4475 §3.1.2.3: TCP/TLS close the connection); a 400 before the
    # close is allowed too.
    "ncl": ({400, "closed"}, "stream: negative Content-Length, unframeable"),
    # Two different Content-Length values: framing error (RFC 4475
    # §3.3.9: TCP/TLS close the connection); a 400 before the close too.
    "mcl01": ({400, "closed"}, "stream: conflicting Content-Length, unframeable"),
    # RFC 2543 INVITE without Content-Length: on a stream Content-Length is
    # mandatory (RFC 3261 §18.3, §20.14), the end of the body is unknown,
    # so the connection is closed (a 400 before the close is allowed).
    "inv2543": ({400, "closed"}, "stream: no Content-Length, unframeable"),
    # The REGISTER (Content-Length 0) is answered first; the INVITE octets
    # that follow are a second message on a stream (RFC 4475 §3.1.1.8 is
    # about datagrams), handled or waited on after the 200.
    "dblreq": ({200}, "stream: the REGISTER is answered first"),
    # RFC 5118 errata, bytes as published. ipv6-in-sdp says 268 but carries
    # 251 body octets: sipsd waits for 17 more (VERDICTS.tsv need-more).
    "ipv6-in-sdp": ({"none", "closed"}, "stream: erratum, body incomplete, sipsd waits"),
    # mult-ip-in-sdp (181 < 189) and ipv4-mapped-ipv6 (236 < 245): the
    # message is framed short; the request is answered as usual and the
    # trailing octets are the start of a misframed next message, so either
    # the answer or a close (when the junk is seen first) is acceptable.
    "mult-ip-in-sdp": ({"any", "closed"}, "stream: erratum, 8 trailing octets misframed"),
    "ipv4-mapped-ipv6": ({"any", "closed"}, "stream: erratum, 9 trailing octets misframed"),
}


def connect(a):
    raw = socket.create_connection((a.host, a.port), timeout=3)
    if a.transport == "tcp":
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(a.ca)
    # The test certificate names example.net (URI SAN); the chain is
    # verified, the name check is not what is under test here.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx.wrap_socket(raw, server_hostname="example.com")


def statuses(buf):
    """Status codes of the complete start lines in buf, in order."""
    out = []
    for line in buf.split(b"\r\n"):
        parts = line.split(b" ")
        if len(parts) >= 2 and parts[0] == b"SIP/2.0" and len(parts[1]) == 3 and parts[1].isdigit():
            out.append(int(parts[1]))
    return out


def exchange(a, payload, wait):
    """Send payload on a fresh connection; the first non-100 status, or
    'closed', or 'none' after `wait` seconds."""
    s = connect(a)
    try:
        s.sendall(payload)
        buf = b""
        deadline = time.time() + wait
        while True:
            left = deadline - time.time()
            if left <= 0:
                return "none"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return "none"
            except (ConnectionResetError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                # Complete status lines already read count as the answer.
                for code in statuses(buf):
                    if code != 100:
                        return code
                return "closed"
            buf += chunk
            head = buf.rsplit(b"\r\n", 1)[0]
            for code in statuses(head + b"\r\n"):
                if code != 100:
                    return code
    finally:
        try:
            s.close()
        except OSError:
            pass


def alive(a):
    """A valid OPTIONS to sipsd itself on a fresh connection gets an answer."""
    proto = "TCP" if a.transport == "tcp" else "TLS"
    ruri = f"sip:{a.host}:{a.port}"
    msg = (
        f"OPTIONS {ruri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{proto} {a.host}:9;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@example.com>;tag={secrets.token_hex(4)}\r\n"
        f"To: <{ruri}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@send_stream\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    try:
        got = exchange(a, msg, 3.0)
    except OSError as e:
        return f"error {e}"
    return got


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--transport", choices=("tcp", "tls"), required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca")
    p.add_argument("--leftover", required=True)
    p.add_argument("--only", default="")
    p.add_argument("tables", nargs="+", help="RESPONSES.tsv:DATADIR")
    a = p.parse_args()
    only = set(a.only.split(",")) if a.only else None
    passed = failed = 0
    used = set()
    leftover = []
    for table in a.tables:
        path, data_dir = table.split(":", 1)
        for row in open(path, encoding="utf-8"):
            if not row.strip() or row.startswith("#"):
                continue
            name, expected = row.rstrip("\n").split("\t")[:2]
            if name == "name" or (only is not None and name not in only):
                continue
            payload = open(f"{data_dir}/{name}.txt", "rb").read()
            key = txn_key(payload)
            if key[0] is not None and key in used:
                leftover.append(name)
                continue
            used.add(key)
            if name in STREAM:
                accept, why = STREAM[name]
            else:
                accept, why = {expected if not expected.isdigit() else int(expected)}, "RESPONSES.tsv"
            quiet = accept <= {"none", "closed"}
            try:
                got = exchange(a, payload, 1.0 if quiet else 1.5)
            except OSError as e:
                got = f"connect error {e}"
            ok = got in accept
            if not ok and "any" in accept:
                ok = isinstance(got, int) and got not in (400, 505)
            want = "|".join(sorted(str(x) for x in accept))
            live = alive(a)
            print(f"{'ok' if ok else 'not ok'} - {a.transport} {name}: expected {want}, got {got} ({why})")
            live_ok = isinstance(live, int)
            print(f"{'ok' if live_ok else 'not ok'} - {a.transport} {name}: sipsd answers OPTIONS after it (got {live})")
            passed += ok + live_ok
            failed += (not ok) + (not live_ok)
    with open(a.leftover, "w", encoding="utf-8") as f:
        f.write(",".join(leftover))
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
