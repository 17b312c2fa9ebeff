#!/usr/bin/env python3
"""send_udp.py EXPECT_TSV DATA_DIR HOST PORT: send each listed message file
as one UDP datagram (bytes exact), read the first non-100 answer within
1.5 s, compare with the expectation; print one line per message and a
summary `N passed, M failed`. Exit 0 when all held.

Several RFC 4475 messages share a branch, sent-by and method, which makes
them one transaction to a server (RFC 3261 §17.2.3). A message whose key
was already used in this run is not sent; its name goes to LEFTOVER_FILE
(argument 5) so the caller can send it to a fresh server.

Without rport a response goes to the source address and the port of the
top Via (RFC 3261 §18.2.2), so the sender also listens on 5060 and on every
port named in the message's first Via line."""
import re
import select
import socket
import sys
import time

from siptxn import txn_key


def via_ports(payload):
    ports = {5060}
    m = re.search(rb"(?im)^(via|v)[ \t]*:(.*)$", payload)
    if m:
        ports.update(int(p) for p in re.findall(rb":[ \t]*(\d{2,5})\b", m.group(2)) if 0 < int(p) < 65536)
    return ports


def call_id(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?im)^(call-id|i)[ \t]*:[ \t]*(\S+)", head)
    return m.group(2) if m else None


def first_status(socks, deadline, cid):
    """The first non-100 status of a response with the message's Call-ID
    (final responses to earlier INVITEs keep being retransmitted)."""
    while time.time() < deadline:
        ready, _, _ = select.select(socks, [], [], max(0.05, deadline - time.time()))
        if not ready:
            continue
        data = ready[0].recv(70000)
        if call_id(data) != cid:
            continue
        line = data.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        if len(parts) >= 2 and parts[0] == b"SIP/2.0" and parts[1].isdigit():
            code = int(parts[1])
            if code != 100:
                return code
    return None


def main():
    expect_path, data_dir, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    leftover_path = sys.argv[5]
    only = set(sys.argv[6].split(",")) if len(sys.argv) > 6 else None
    passed = failed = 0
    used = set()
    leftover = []
    for row in open(expect_path, encoding="utf-8"):
        if not row.strip() or row.startswith("#"):
            continue
        name, expected = row.split("\t")[:2]
        if only is not None and name not in only:
            continue
        payload = open(f"{data_dir}/{name}.txt", "rb").read()
        key = txn_key(payload)
        if key[0] is not None and key in used:
            leftover.append(name)
            continue
        used.add(key)
        src_ip = host.rsplit(".", 1)[0] + ".9"
        socks = []
        for p in sorted(via_ports(payload)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src_ip, p))
            socks.append(s)
        socks[0].sendto(payload, (host, port))
        wait = 0.4 if expected == "none" else 1.5
        got = first_status(socks, time.time() + wait, call_id(payload))
        for s in socks:
            s.close()
        if expected == "none":
            ok = got is None
        elif expected == "any":
            ok = got is not None and got not in (400, 505)
        else:
            ok = got == int(expected)
        print(f"{'ok' if ok else 'not ok'} - {name}: expected {expected}, got {got}")
        passed += ok
        failed += not ok
    with open(leftover_path, "w", encoding="utf-8") as f:
        f.write(",".join(leftover))
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
