#!/usr/bin/env python3
"""run_protos.py: send PROTOS c07-sip test cases to a running sipsd over UDP or
TLS and check after every case that sipsd still answers a fresh OPTIONS.

Usage:
  run_protos.py CORPUS_DIR --host H --port P [--tls --ca FILE --sni DOMAIN]
                [--limit N] [--timeout S] [--max-seconds S] [--pid PID]

CORPUS_DIR holds case files (0000000 ..) in the PROTOS format: two
length-prefixed templates, "<decimal length> SP <bytes>" twice (the INVITE,
then the teardown). INDEX.tsv (case, group, ...) in CORPUS_DIR or its parent
names each case's group; without it every case is in group "?".

For each case: fill the placeholders (bytes, not text: cases hold arbitrary
octets), send the INVITE then the CANCEL (UDP: two datagrams from one bound
socket; TLS: one new TLS connection per case), then send a new OPTIONS and
require an answer within --timeout (UDP: retransmitted like a UA, T1 = 0.5 s
doubling; TLS: first on the case's own connection, and when the server has
closed it after a framing error, or it is still waiting for the rest of a
misframed message, on a new connection). A case passes when that OPTIONS is
answered. The first case after which sipsd stops answering ends the run: it
is printed and the exit status is 1.

Per group the summary counts: cases run, sent (UDP: a case over 65,507 bytes
cannot be a datagram and is counted "too big", not sent), answered (sipsd
sent at least one response for the case's INVITE or CANCEL, any status),
dropped (no response), closed (TLS: sipsd closed the case's connection),
stalled (TLS: the connection neither answered nor closed within
--stream-wait, a message still incomplete for sipsd), and the INVITE's final
status codes seen.

Everything is bounded: every socket operation by --timeout, each case by
about 4 x --timeout, the whole run by --max-seconds (exit 3 when that bound
stops it before the last case).

Exit status: 0 every case run and passed, 1 sipsd stopped answering, 2 usage
or corpus error, 3 stopped by --max-seconds.
"""
import argparse
import os
import re
import secrets
import select
import socket
import ssl
import sys
import time

UDP_MAX = 65507  # largest IPv4 UDP payload
T1, T2 = 0.5, 4.0  # RFC 3261 timers for the OPTIONS retransmissions

PLACEHOLDERS = (b"<To>", b"<From>", b"<From-Address>", b"<From-IP>", b"<Local-Port>",
                b"<Branch-ID>", b"<Call-ID>", b"<CSeq>", b"<Teardown-Method>")


class CorpusError(Exception):
    pass


def parse_case(data):
    """Return the two templates (bytes) of a PROTOS case file."""
    out = []
    pos = 0
    for which in ("INVITE", "teardown"):
        sp = data.find(b" ", pos, pos + 12)
        if sp < 0 or not data[pos:sp].isdigit():
            raise CorpusError(f"{which} template: no decimal length at offset {pos}")
        n = int(data[pos:sp])
        start = sp + 1
        if start + n > len(data):
            raise CorpusError(f"{which} template: length {n} runs past the end of the file")
        out.append(data[start:start + n])
        pos = start + n
    if pos != len(data):
        raise CorpusError(f"{len(data) - pos} bytes after the teardown template")
    return out[0], out[1]


def body_length(msg):
    """Byte length of the body: what follows the first empty line (CRLF CRLF).
    A case whose empty line is damaged has no body: 0."""
    i = msg.find(b"\r\n\r\n")
    return 0 if i < 0 else len(msg) - (i + 4)


def fill(template, values):
    """Substitute every placeholder; <Content-Length> last, from the body."""
    for key in PLACEHOLDERS:
        template = template.replace(key, values[key])
    if b"<Content-Length>" in template:
        template = template.replace(b"<Content-Length>", str(body_length(template)).encode())
    return template


def load_index(corpus):
    for path in (os.path.join(corpus, "INDEX.tsv"), os.path.join(os.path.dirname(os.path.abspath(corpus)), "INDEX.tsv")):
        if os.path.isfile(path):
            groups = {}
            with open(path, encoding="utf-8") as f:
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    if len(cols) >= 2 and cols[0] != "case":
                        groups[cols[0]] = cols[1]
            return groups
    return {}


STATUS_RE = re.compile(rb"^SIP/2\.0 (\d{3})")
CSEQ_RE = re.compile(rb"\r\n(?:CSeq|cseq|CSEQ)[ \t]*:[^\r\n]*?([A-Za-z]+)[ \t]*\r\n")


def status_of(msg):
    m = STATUS_RE.match(msg)
    return int(m.group(1)) if m else None


def cseq_method(msg):
    m = CSEQ_RE.search(msg)
    return m.group(1).upper() if m else b""


class Stats:
    def __init__(self):
        self.groups = {}  # group -> dict of counters

    def g(self, group):
        if group not in self.groups:
            self.groups[group] = {"cases": 0, "sent": 0, "answered": 0, "dropped": 0, "toobig": 0,
                                  "closed": 0, "stalled": 0, "codes": {}}
        return self.groups[group]


class Case:
    def __init__(self, name, group, invite, teardown):
        self.name, self.group = name, group
        self.invite_t, self.teardown_t = invite, teardown
        self.invite = self.teardown = b""
        self.sent = False
        self.codes = []  # status codes of responses to it
        self.final = None  # first final status of a response that is not to the CANCEL


class Harness:
    def __init__(self, a):
        self.a = a
        self.run = secrets.token_hex(3)
        self.seq = 0
        self.token_re = re.compile(rb"pr" + self.run.encode() + rb"c(\d{7})")
        self.cases = {}  # name -> Case (for attributing late responses)
        self.stats = Stats()
        self.local_ip = self.pick_local_ip()
        self.to = (a.to or f"protos@{a.sni or a.host}").encode()
        self.tls_ctx = None
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False  # the RFC 5922 name check is not under test here
            if a.ca:
                ctx.load_verify_locations(a.ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            else:
                ctx.verify_mode = ssl.CERT_NONE
            self.tls_ctx = ctx

    def pick_local_ip(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((self.a.host, self.a.port))
            return s.getsockname()[0]
        finally:
            s.close()

    # ---- messages ----

    def values(self, case, local_port):
        tok = f"pr{self.run}c{case.name}".encode()
        ip = self.local_ip.encode()
        return {b"<To>": self.to, b"<From>": b"protos@" + ip, b"<From-Address>": ip,
                b"<From-IP>": ip, b"<Local-Port>": str(local_port).encode(), b"<Branch-ID>": tok,
                b"<Call-ID>": tok, b"<CSeq>": b"1", b"<Teardown-Method>": b"CANCEL"}

    def options(self, proto, local_port):
        self.seq += 1
        cid = f"opt{self.run}n{self.seq}"
        tport = ";transport=tls" if proto == "TLS" else ""
        msg = (f"OPTIONS sip:{self.a.host}:{self.a.port}{tport} SIP/2.0\r\n"
               f"Via: SIP/2.0/{proto} {self.local_ip}:{local_port};branch=z9hG4bK{cid};rport\r\n"
               "Max-Forwards: 70\r\n"
               f"From: <sip:protos@{self.local_ip}>;tag={cid}\r\n"
               f"To: <sip:{self.a.host}:{self.a.port}>\r\n"
               f"Call-ID: {cid}\r\n"
               "CSeq: 1 OPTIONS\r\n"
               "Content-Length: 0\r\n\r\n").encode()
        return msg, f"Call-ID: {cid}\r\n".encode()

    def note_response(self, msg, current):
        """Attribute a response to the case whose token it carries (or to the
        current case when it carries none: a 400 built from a damaged Via)."""
        st = status_of(msg)
        if st is None:
            return
        m = self.token_re.search(msg)
        case = self.cases.get(m.group(1).decode()) if m else current
        if case is None:
            return
        case.codes.append(st)
        if st >= 200 and case.final is None and cseq_method(msg) != b"CANCEL":
            case.final = st

    # ---- UDP ----

    def udp_setup(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((self.local_ip, 0))
        self.udp = s
        self.udp_port = s.getsockname()[1]

    def udp_drain(self, current, until, want=None):
        """Read datagrams until `until` (absolute time) or, when `want` is
        given, until a datagram containing it arrives (returns True)."""
        while True:
            left = until - time.time()
            r, _, _ = select.select([self.udp], [], [], max(left, 0))
            if not r:
                return False
            try:
                data = self.udp.recv(65536)
            except OSError:
                continue
            if want is not None and want in data:
                return True
            self.note_response(data, current)

    def udp_case(self, case, st):
        v = self.values(case, self.udp_port)
        case.invite, case.teardown = fill(case.invite_t, v), fill(case.teardown_t, v)
        dst = (self.a.host, self.a.port)
        if len(case.invite) > UDP_MAX:
            st["toobig"] += 1
        else:
            try:
                self.udp.sendto(case.invite, dst)
                case.sent = True
                st["sent"] += 1
                if len(case.teardown) <= UDP_MAX:
                    self.udp.sendto(case.teardown, dst)
            except OSError as e:  # the liveness check below still decides
                print(f"case {case.name}: send failed: {e}", file=sys.stderr)
        # Liveness: a new OPTIONS, retransmitted at T1, 2T1, ... (max T2).
        msg, want = self.options("UDP", self.udp_port)
        deadline = time.time() + self.a.timeout
        interval = T1
        while time.time() < deadline:
            self.udp.sendto(msg, dst)
            if self.udp_drain(case, min(deadline, time.time() + interval), want):
                return True
            interval = min(interval * 2, T2)
        return False

    # ---- TLS ----

    def tls_connect(self, deadline):
        """A new TLS connection; retried (bounded) while sipsd refuses it."""
        last = None
        while time.time() < deadline:
            raw = None
            try:
                raw = socket.create_connection((self.a.host, self.a.port),
                                               timeout=max(0.1, deadline - time.time()))
                # Each message in as few segments as possible, without
                # Nagle's wait for the server's delayed ACK.
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s = self.tls_ctx.wrap_socket(raw, server_hostname=self.a.sni)
                return s
            except (OSError, ssl.SSLError) as e:
                last = e
                if raw:
                    raw.close()
                time.sleep(0.05)
        raise TimeoutError(f"no TLS connection within the timeout ({last})")

    def tls_read(self, s, case, until, want, buf):
        """Read from the stream until `want` is in the buffer (returns "ok"),
        the server closes ("closed") or `until` ("timeout"). Each whole
        response in the buffer is attributed to its case."""
        while True:
            while True:
                end = buf[0].find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[0][:end + 4]
                if want in head:
                    return "ok"
                m = re.search(rb"\r\nContent-Length[ \t]*:[ \t]*(\d+)", head, re.I)
                n = end + 4 + (int(m.group(1)) if m else 0)
                if len(buf[0]) < n:
                    break
                self.note_response(buf[0][:n], case)
                buf[0] = buf[0][n:]
            left = until - time.time()
            if left <= 0:
                return "timeout"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return "timeout"
            except (OSError, ssl.SSLError):
                return "closed"
            if not chunk:
                return "closed"
            buf[0] += chunk

    def tls_options(self, s, case, until, buf):
        msg, want = self.options("TLS", s.getsockname()[1])
        try:
            s.settimeout(max(0.1, until - time.time()))
            s.sendall(msg)
        except (OSError, ssl.SSLError):
            return "closed"
        return self.tls_read(s, case, until, want, buf)

    def tls_case(self, case, st):
        t0 = time.time()
        s = self.tls_connect(t0 + self.a.timeout)
        try:
            v = self.values(case, s.getsockname()[1])
            case.invite, case.teardown = fill(case.invite_t, v), fill(case.teardown_t, v)
            closed = False
            try:
                s.settimeout(self.a.timeout)
                case.sent = True
                st["sent"] += 1
                s.sendall(case.invite)
                s.sendall(case.teardown)
            except (OSError, ssl.SSLError):
                closed = True
            buf = [b""]
            res = "closed"
            if not closed:
                res = self.tls_options(s, case, time.time() + self.a.stream_wait, buf)
            if res == "ok":
                return True
            if res == "closed":
                st["closed"] += 1
            else:
                st["stalled"] += 1
            # Collect what the old connection still holds, then ask again on
            # a new connection.
            if res != "closed":
                self.tls_read(s, case, time.time() + 0.01, b"\0never\0", buf)
        finally:
            s.close()
        deadline = time.time() + self.a.timeout
        try:
            s2 = self.tls_connect(deadline)
        except TimeoutError:
            return False
        try:
            return self.tls_options(s2, case, deadline, [b""]) == "ok"
        finally:
            s2.close()

    # ---- run ----

    def pid_state(self):
        if not self.a.pid:
            return ""
        try:
            with open(f"/proc/{self.a.pid}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
            return f" (pid {self.a.pid} state {st.get('State', '?').strip()})"
        except OSError:
            return f" (pid {self.a.pid} is gone)"

    def main(self, files, index):
        a = self.a
        proto = "tls" if a.tls else "udp"
        if not a.tls:
            self.udp_setup()
        start = time.time()
        passed = failed = 0
        failure = None
        stopped = False
        for n, path in enumerate(files):
            if time.time() - start > a.max_seconds:
                stopped = True
                break
            name = os.path.basename(path)
            with open(path, "rb") as f:
                data = f.read()
            try:
                inv, td = parse_case(data)
            except CorpusError as e:
                print(f"corpus error: {path}: {e}", file=sys.stderr)
                return 2
            case = Case(name, index.get(name, "?"), inv, td)
            self.cases[name] = case
            st = self.stats.g(case.group)
            st["cases"] += 1
            why = ""
            try:
                alive = self.tls_case(case, st) if a.tls else self.udp_case(case, st)
            except TimeoutError as e:
                alive, why = False, str(e)
            if alive:
                passed += 1
            else:
                failed += 1
                failure = case
                break
            if a.progress and (n + 1) % a.progress == 0:
                print(f"... {n + 1}/{len(files)} cases, {time.time() - start:.1f} s", file=sys.stderr)
        # Late responses (UDP): a short, bounded drain.
        if not a.tls:
            self.udp_drain(None, time.time() + 0.3)
        took = time.time() - start
        for case in self.cases.values():
            st = self.stats.g(case.group)
            if case.sent:
                if case.codes:
                    st["answered"] += 1
                else:
                    st["dropped"] += 1
            key = str(case.final) if case.final else "-"
            st["codes"][key] = st["codes"].get(key, 0) + 1
        self.summary(proto, took)
        if failure:
            print(f"FAILED: sipsd did not answer an OPTIONS within {a.timeout} s after case "
                  f"{failure.name} (group {failure.group}){self.pid_state()}")
            if why:
                print(f"  {why}")
            print(f"  file: {os.path.join(a.corpus, failure.name)}")
            print(f"  INVITE ({len(failure.invite)} bytes, sent={failure.sent}): {failure.invite[:400]!r}")
            print(f"  CANCEL ({len(failure.teardown)} bytes): {failure.teardown[:200]!r}")
        if stopped:
            print(f"STOPPED: --max-seconds {a.max_seconds} reached after {passed + failed} of {len(files)} cases")
        print(f"{passed} passed, {failed} failed")
        if failed:
            return 1
        return 3 if stopped else 0

    def summary(self, proto, took):
        cols = ("cases", "sent", "answered", "dropped", "toobig", "closed", "stalled")
        print(f"{'group (' + proto + ')':32s}" + "".join(f"{c:>9s}" for c in cols) + "  final status: cases")
        tot = {c: 0 for c in cols}
        codes_all = {}
        for g, st in self.stats.groups.items():
            codes = " ".join(f"{k}:{v}" for k, v in sorted(st["codes"].items()))
            print(f"{g:32s}" + "".join(f"{st[c]:9d}" for c in cols) + f"  {codes}")
            for c in cols:
                tot[c] += st[c]
            for k, v in st["codes"].items():
                codes_all[k] = codes_all.get(k, 0) + v
        codes = " ".join(f"{k}:{v}" for k, v in sorted(codes_all.items()))
        print(f"{'total':32s}" + "".join(f"{tot[c]:9d}" for c in cols) + f"  {codes}")
        print(f"protos {proto}: {tot['cases']} cases, {tot['sent']} sent, {self.seq} OPTIONS probes, "
              f"{took:.1f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", help="folder of PROTOS case files")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true", help="send over TLS (default UDP)")
    p.add_argument("--ca", help="CA bundle to verify the server's chain (TLS)")
    p.add_argument("--sni", help="server name to send (TLS); also the <To> host")
    p.add_argument("--to", help="user@host for <To> (default protos@SNI or protos@HOST)")
    p.add_argument("--limit", type=int, default=0, help="run at most N cases")
    p.add_argument("--cases", help="comma-separated case names to run (default all)")
    p.add_argument("--timeout", type=float, default=2.0, help="OPTIONS answer bound, s (default 2)")
    p.add_argument("--stream-wait", type=float, default=0.3,
                   help="TLS: how long the case's own connection may take to answer (default 0.3 s)")
    p.add_argument("--max-seconds", type=float, default=3600, help="bound on the whole run (default 3600)")
    p.add_argument("--pid", type=int, help="sipsd's PID, to say whether it is gone when it stops answering")
    p.add_argument("--progress", type=int, default=0, help="print progress every N cases")
    a = p.parse_args()
    if a.timeout <= 0 or a.stream_wait <= 0:
        p.error("--timeout and --stream-wait must be positive")
    if not os.path.isdir(a.corpus):
        p.error(f"{a.corpus}: not a folder")
    files = sorted(os.path.join(a.corpus, f) for f in os.listdir(a.corpus) if re.fullmatch(r"\d{7}", f))
    if a.cases:
        want = set(a.cases.split(","))
        files = [f for f in files if os.path.basename(f) in want]
    if a.limit:
        files = files[:a.limit]
    if not files:
        print(f"no case files in {a.corpus}", file=sys.stderr)
        return 2
    return Harness(a).main(files, load_index(a.corpus))


if __name__ == "__main__":
    sys.exit(main())
