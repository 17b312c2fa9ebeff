#!/usr/bin/env python3
"""sipraw.py: raw-socket checks the sipsctl UA does not do (holding many
connections, stalling a handshake). Each subcommand is bounded in time and
count and prints one result line; exit 0 when the expectation held."""
import argparse
import os
import socket
import sys
import time


def options(host, port, branch):
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {host}:9;branch=z9hG4bK{branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@invalid>;tag={branch}\r\n"
        f"To: <sip:probe@{host}>\r\n"
        f"Call-ID: {branch}@sipraw\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def read_response(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in data and time.time() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def is_closed(sock, timeout):
    """True when the peer closes (EOF or reset) within timeout seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def cmd_per_ip_limit(a):
    """Open `limit` connections, expect the next one to be closed at once,
    while the first still answers OPTIONS."""
    conns = []
    for _ in range(a.limit):
        s = socket.create_connection((a.host, a.port), timeout=2)
        conns.append(s)
    time.sleep(0.2)
    extra = socket.create_connection((a.host, a.port), timeout=2)
    refused = is_closed(extra, 2.0)
    conns[0].sendall(options(a.host, a.port, "perip0"))
    resp = read_response(conns[0], 3)
    answered = resp.startswith(b"SIP/2.0 200")
    for s in conns + [extra]:
        s.close()
    print(f"per-ip-limit: extra_refused={refused} first_answered={answered}")
    return 0 if refused and answered else 1


def cmd_stalled_handshake(a):
    """Connect to a TLS port and send nothing: the server must close the
    connection after its handshake timeout (within `max` seconds)."""
    s = socket.create_connection((a.host, a.port), timeout=2)
    start = time.time()
    closed = is_closed(s, a.max)
    took = time.time() - start
    s.close()
    print(f"stalled-handshake: closed={closed} after={took:.2f}s")
    return 0 if closed and took >= a.min else 1


def cmd_crlf_ping(a):
    """Over TCP: a double CRLF is answered with one CRLF."""
    s = socket.create_connection((a.host, a.port), timeout=2)
    s.sendall(b"\r\n\r\n")
    s.settimeout(3)
    data = s.recv(16)
    s.close()
    print(f"crlf-ping: got={data!r}")
    return 0 if data == b"\r\n" else 1


def cmd_max_conns(a):
    """Hold `limit` connections from different source addresses; the next
    one is closed at once while the first still answers OPTIONS."""
    conns = []
    for i in range(a.limit):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.32.{10 + i}", 0))
        s.settimeout(2)
        s.connect((a.host, a.port))
        conns.append(s)
    time.sleep(0.2)
    extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    extra.bind(("127.0.32.250", 0))
    extra.settimeout(2)
    extra.connect((a.host, a.port))
    refused = is_closed(extra, 2.0)
    conns[0].sendall(options(a.host, a.port, "maxc0"))
    answered = read_response(conns[0], 3).startswith(b"SIP/2.0 200")
    for s in conns + [extra]:
        s.close()
    print(f"max-conns: extra_refused={refused} first_answered={answered}")
    return 0 if refused and answered else 1


def cmd_max_handshakes(a):
    """Hold `limit` TLS connections that never send a ClientHello; the next
    one is refused at once. Then, after the stalled ones are dropped at the
    handshake timeout, a new connection is accepted again."""
    stalled = [socket.create_connection((a.host, a.port), timeout=2) for _ in range(a.limit)]
    time.sleep(0.2)
    extra = socket.create_connection((a.host, a.port), timeout=2)
    refused = is_closed(extra, 1.0)
    extra.close()
    dropped = all(is_closed(s, a.timeout + 3) for s in stalled)
    for s in stalled:
        s.close()
    late = socket.create_connection((a.host, a.port), timeout=2)
    accepted = not is_closed(late, 0.5)
    late.close()
    print(f"max-handshakes: extra_refused={refused} stalled_dropped={dropped} later_accepted={accepted}")
    return 0 if refused and dropped and accepted else 1


def cmd_idle(a):
    """A silent TCP connection is closed after the idle timeout, while one
    that sends CRLF keep-alives stays open past it."""
    quiet = socket.create_connection((a.host, a.port), timeout=2)
    busy = socket.create_connection((a.host, a.port), timeout=2)
    start = time.time()
    busy_alive = True
    quiet_closed_at = None
    while time.time() - start < a.timeout * 2.5:
        busy.sendall(b"\r\n\r\n")
        busy.settimeout(2)
        try:
            if busy.recv(2) != b"\r\n":
                busy_alive = False
                break
        except OSError:
            busy_alive = False
            break
        if quiet_closed_at is None and is_closed(quiet, 0.2):
            quiet_closed_at = time.time() - start
    quiet.close()
    busy.close()
    ok = quiet_closed_at is not None and quiet_closed_at >= a.timeout * 0.8 and busy_alive
    print(f"idle: quiet_closed_after={quiet_closed_at} busy_alive={busy_alive}")
    return 0 if ok else 1


def cmd_oversize(a):
    """A message whose Content-Length is over the limit, and a header block
    that never ends, each get their connection closed; a good connection
    opened before keeps answering."""
    good = socket.create_connection((a.host, a.port), timeout=2)
    big = socket.create_connection((a.host, a.port), timeout=2)
    req = options(a.host, a.port, "big").replace(b"Content-Length: 0", b"Content-Length: 70000")
    big.sendall(req)
    big_closed = is_closed(big, 3)
    endless = socket.create_connection((a.host, a.port), timeout=2)
    endless_closed = False
    try:
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        endless.sendall(b"OPTIONS sip:x@" + a.host.encode() + b" SIP/2.0\r\n")
        for _ in range(100):
            endless.sendall(line)
    except OSError:
        endless_closed = True
    endless_closed = endless_closed or is_closed(endless, 3)
    good.sendall(options(a.host, a.port, "good"))
    answered = read_response(good, 3).startswith(b"SIP/2.0 200")
    for s in (good, big, endless):
        s.close()
    print(f"oversize: big_closed={big_closed} endless_closed={endless_closed} good_answered={answered}")
    return 0 if big_closed and endless_closed and answered else 1


def cmd_no_reader(a):
    """A peer that sends requests and never reads: its responses pile up
    until the write-queue limit closes the connection; another connection
    keeps answering. Bounded: at most `count` requests, `seconds` seconds."""
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(2)
    slow.connect((a.host, a.port))
    good = socket.create_connection((a.host, a.port), timeout=2)
    req = options(a.host, a.port, "slow" + "x" * 200)
    batch = req * 200
    start = time.time()
    sent = 0
    closed = False
    while sent < a.count and time.time() - start < a.seconds:
        try:
            slow.sendall(batch)
            sent += 200
        except OSError:
            closed = True
            break
    if not closed:
        # The server may have closed without our send failing yet.
        try:
            slow.settimeout(0.5)
            slow.sendall(batch)
            time.sleep(1)
            slow.sendall(batch)
        except OSError:
            closed = True
    good.sendall(options(a.host, a.port, "good2"))
    answered = read_response(good, 3).startswith(b"SIP/2.0 200")
    slow.close()
    good.close()
    print(f"no-reader: requests_sent={sent} closed={closed} good_answered={answered}")
    return 0 if closed and answered else 1


def cmd_strict_route(a):
    """RFC 3261 §16.4: a request from a strict router carries our Record-Route
    URI as Request-URI and the real one as the last Route value. Send
    OPTIONS sip:DOMAIN;lr with Route: <sip:ME>; expect it to arrive at ME
    with Request-URI sip:ME and without that Route."""
    me = (a.listen_host, a.listen_port)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(me)
    target = f"sip:{me[0]}:{me[1]}"
    msg = (
        f"OPTIONS sip:{a.domain};lr SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bKstrict1;rport\r\n"
        f"Route: <{target}>\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{a.domain}>;tag=s1\r\n"
        f"To: <sip:probe@{a.domain}>\r\n"
        "Call-ID: strict-route-1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    rx.sendto(msg, (a.host, a.port))
    rx.settimeout(3)
    got = None
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            data = rx.recv(65535)
        except socket.timeout:
            break
        if data.startswith(b"OPTIONS "):
            got = data
            break
    rx.close()
    ok = False
    if got:
        first = got.split(b"\r\n", 1)[0].decode()
        has_route = b"\r\nRoute:" in got
        ok = first == f"OPTIONS {target} SIP/2.0" and not has_route
        print(f"strict-route: forwarded as '{first}', Route left: {has_route}")
    else:
        print("strict-route: nothing forwarded")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("per-ip-limit")
    x.add_argument("host"); x.add_argument("port", type=int); x.add_argument("limit", type=int)
    x = sub.add_parser("stalled-handshake")
    x.add_argument("host"); x.add_argument("port", type=int)
    x.add_argument("--min", type=float, default=0.0); x.add_argument("--max", type=float, default=10.0)
    x = sub.add_parser("crlf-ping")
    x.add_argument("host"); x.add_argument("port", type=int)
    x = sub.add_parser("max-conns")
    x.add_argument("host"); x.add_argument("port", type=int); x.add_argument("limit", type=int)
    x = sub.add_parser("max-handshakes")
    x.add_argument("host"); x.add_argument("port", type=int); x.add_argument("limit", type=int)
    x.add_argument("--timeout", type=float, default=1.0)
    x = sub.add_parser("idle")
    x.add_argument("host"); x.add_argument("port", type=int)
    x.add_argument("--timeout", type=float, default=1.0)
    x = sub.add_parser("oversize")
    x.add_argument("host"); x.add_argument("port", type=int)
    x = sub.add_parser("no-reader")
    x.add_argument("host"); x.add_argument("port", type=int)
    x.add_argument("--count", type=int, default=400000); x.add_argument("--seconds", type=float, default=20)
    x = sub.add_parser("strict-route")
    x.add_argument("host"); x.add_argument("port", type=int); x.add_argument("domain")
    x.add_argument("listen_host"); x.add_argument("listen_port", type=int)
    a = p.parse_args()
    return {"strict-route": cmd_strict_route, "per-ip-limit": cmd_per_ip_limit, "stalled-handshake": cmd_stalled_handshake,
            "crlf-ping": cmd_crlf_ping, "max-conns": cmd_max_conns,
            "max-handshakes": cmd_max_handshakes, "idle": cmd_idle, "oversize": cmd_oversize,
            "no-reader": cmd_no_reader}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
