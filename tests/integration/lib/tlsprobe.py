#!/usr/bin/env python3
"""tlsprobe.py: small TLS checks for the reload test.
  fingerprint HOST PORT CA SNI      print the server certificate's SHA-256
  hold HOST PORT CA SNI FIFO OUT    keep one TLS connection open; on each line
                                    read from FIFO ("options") send an OPTIONS
                                    on it and append the status line to OUT;
                                    "quit" ends. Bounded: 60 s."""
import hashlib
import os
import select
import socket
import ssl
import sys
import time


def connect(host, port, ca, sni):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # RFC 5922 names are checked by sipsd's own tools
    raw = socket.create_connection((host, int(port)), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=sni)


def options(host, port, n):
    return (f"OPTIONS sips:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:9;branch=z9hG4bKhold{n};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@example.net>;tag=h\r\n"
            f"To: <sips:{host}>\r\nCall-ID: hold-{n}-{os.getpid()}\r\nCSeq: {n} OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def main():
    cmd = sys.argv[1]
    if cmd == "fingerprint":
        s = connect(*sys.argv[2:6])
        print(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest())
        s.close()
        return 0
    if cmd == "hold":
        host, port, ca, sni, fifo, out = sys.argv[2:8]
        s = connect(host, port, ca, sni)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.time() + 60
        n = 0
        buf = b""
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            data = os.read(fd, 100)
            if not data:
                time.sleep(0.1)
                continue
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line == b"quit":
                    s.close()
                    return 0
                n += 1
                s.sendall(options(host, port, n))
                s.settimeout(5)
                resp = b""
                while b"\r\n\r\n" not in resp:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    resp += chunk
                with open(out, "a") as f:
                    f.write(resp.split(b"\r\n", 1)[0].decode(errors="replace") + "\n")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
