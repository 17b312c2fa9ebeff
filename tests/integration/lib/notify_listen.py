#!/usr/bin/env python3
"""notify_listen.py SOCKET OUT SECONDS: a systemd-style notify socket;
appends every datagram received to OUT, one per line, for at most SECONDS."""
import os
import socket
import sys
import time

path, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
deadline = time.time() + secs
while time.time() < deadline:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        data = s.recv(4096)
    except socket.timeout:
        break
    with open(out, "a") as f:
        f.write(data.decode(errors="replace").replace("\n", " ") + "\n")
s.close()
os.unlink(path)
