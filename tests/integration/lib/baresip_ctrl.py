#!/usr/bin/env python3
"""baresip_ctrl.py: send one command to baresip's ctrl_tcp module (JSON in a
netstring, https://github.com/baresip/baresip/blob/main/modules/ctrl_tcp)
and print its response; events that arrive first are printed too. Bounded:
connect and answer within --timeout seconds. Exit 0 when the response says
ok=true.

Usage: baresip_ctrl.py HOST PORT COMMAND [PARAMS] [--timeout S]"""
import argparse
import json
import socket
import sys
import time


def netstring(data):
    return str(len(data)).encode() + b":" + data + b","


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("command")
    p.add_argument("params", nargs="?", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()
    deadline = time.time() + a.timeout
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
        req = {"command": a.command, "params": a.params, "token": "sipsd-test"}
        s.sendall(netstring(json.dumps(req).encode()))
        buf = b""
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b":" in buf:
                head, _, rest = buf.partition(b":")
                if not head.isdigit() or len(rest) < int(head) + 1:
                    break
                n = int(head)
                msg, buf = rest[:n], rest[n + 1:]
                obj = json.loads(msg)
                print("baresip-ctrl:", json.dumps(obj))
                if obj.get("response"):
                    return 0 if obj.get("ok") else 1
    except (OSError, ValueError) as e:
        print(f"baresip-ctrl: error: {e!r}")
        return 1
    print("baresip-ctrl: no response")
    return 1


if __name__ == "__main__":
    sys.exit(main())
