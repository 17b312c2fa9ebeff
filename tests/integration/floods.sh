#!/usr/bin/env bash
# floods.sh: floods and slow peers (issue 8), scaled for make check (< 60 s):
# many TCP connections held, TLS handshakes that never finish (below and
# over max_handshakes), slowloris (TCP and TLS), peers that never read, a
# REGISTER flood for one AOR, connection churn with a populated location
# store. During each, a legitimate TCP client keeps sending OPTIONS (success
# count and latency printed and checked), sipsd's RSS stays under a stated
# bound, and its open descriptors return to the baseline afterwards.
# Checks marked "# was BUG:" failed before sipsd was fixed (regressions now)
# (docs/robustness.md, "Bugs found").
#
# Scale by environment (docs/robustness.md): FLOOD_CONNS (default 2000),
# FLOOD_HANDSHAKES (300; above 500 max_handshakes is raised to it + 100),
# FLOOD_SLOW (50 per transport), FLOOD_SLOW_EVERY (seconds between bytes,
# 0.05), FLOOD_NOREAD (20), FLOOD_REGISTERS (2000), FLOOD_CHURN_AORS (AORs
# registered before the connection churn, 10000), FLOOD_RSS_MB (bound on
# sipsd's RSS, default 64, plus 6 KiB per registered AOR once the churn
# phase has filled the store; 512 for an ASan build).
source "$(dirname "$0")/lib/common.sh"
IP=127.0.71.1          # sipsd
SRC=127.0.72           # flood sources: 127.0.72.1, .2, ... (.250 for REGISTER)
LEGIT=127.0.73.1       # the legitimate client
CONNS=${FLOOD_CONNS:-2000}
HANDSHAKES=${FLOOD_HANDSHAKES:-300}
SLOW=${FLOOD_SLOW:-50}
NOREAD=${FLOOD_NOREAD:-20}
REGISTERS=${FLOOD_REGISTERS:-2000}
RSS_MB=${FLOOD_RSS_MB:-64}
CHURN_AORS=${FLOOD_CHURN_AORS:-10000}
P99_MS=500
# An ASan build keeps freed memory in quarantine and runs slower: its own
# bounds (the release build's are the ones docs/robustness.md states).
if grep -q '^SIPSD_SANITIZE:BOOL=ON' "$SIPSD_BUILD/CMakeCache.txt" 2>/dev/null; then
  RSS_MB=${FLOOD_RSS_MB:-512}
  P99_MS=2000
  echo "# sanitizer build: RSS bound ${RSS_MB} MiB, p99 bound ${P99_MS} ms"
fi
HS_TIMEOUT_MS=2000
IDLE_TIMEOUT_MS=3000
WQ_LIMIT=65536
MAX_HANDSHAKES=512     # the default
SLOW_EVERY=${FLOOD_SLOW_EVERY:-0.05}
# More stalled handshakes than the pool holds would only be refused: give
# a larger FLOOD_HANDSHAKES a pool of its size plus room for real clients.
if [ "$HANDSHAKES" -gt $((MAX_HANDSHAKES - 12)) ]; then
  MAX_HANDSHAKES=$((HANDSHAKES + 100))
fi

# Descriptors: the flood process holds CONNS sockets and sipsd as many.
# Raise the soft limit to the hard one; scale CONNS down if still short.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$CONNS" -gt $((nofile - 200)) ]; then
  echo "# ulimit -n is $nofile: FLOOD_CONNS lowered from $CONNS to $((nofile - 200))"
  CONNS=$((nofile - 200))
fi
echo "# scale: conns=$CONNS handshakes=$HANDSHAKES (max_handshakes=$MAX_HANDSHAKES) slowloris=$SLOW+$SLOW every ${SLOW_EVERY}s no-reader=$NOREAD registers=$REGISTERS rss_bound=${RSS_MB}MiB ulimit_n=$nofile"

pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
cat >"$TEST_TMP/f.conf" <<CONF
workers = 2
[tls]
ca_file = $pki/ca.pem
[limits]
max_handshakes = $MAX_HANDSHAKES
handshake_timeout_ms = $HS_TIMEOUT_MS
idle_timeout_ms = $IDLE_TIMEOUT_MS
message_timeout_ms = $IDLE_TIMEOUT_MS
max_handshakes_per_ip = 100
max_write_queue = $WQ_LIMIT
[dns]
servers = 127.0.71.9:53
timeout_ms = 200
tries = 1
[domain example.com]
cert = $pki/p1-com.pem
key = $pki/p1-com.key
[listen udp $IP:5060]
[listen tcp $IP:5060]
[listen tls $IP:5061]
CONF

PY="$TEST_TMP/floods.py"
cat >"$PY" <<'PYEOF'
"""floods.py: flood generators and the measured legitimate client for
floods.sh. Each subcommand is bounded in count and time and prints one
result line of key=value pairs; exit 0 when its expectation held."""
import argparse
import os
import re
import select
import socket
import ssl
import sys
import time


def options(host, port, tag, proto="TCP", src="127.0.0.1:9"):
    return (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{proto} {src};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:legit@example.com>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def proc_sample(pid):
    """(VmRSS kB, open fds) of a process, or (0, 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return 0, 0


def ready(socks, timeout, write=False):
    """The sockets of `socks` readable (or writable), waiting at most
    `timeout` s: poll(2), since select(2) stops at descriptor 1024."""
    if not socks:
        time.sleep(max(0, timeout))
        return []
    p = select.poll()
    by_fd = {}
    for s in socks:
        by_fd[s.fileno()] = s
        p.register(s, select.POLLOUT if write else select.POLLIN)
    return [by_fd[fd] for fd, ev in p.poll(max(0, timeout) * 1000) if fd in by_fd]


def bound(src, n):
    """A TCP socket bound to source address `src` (port chosen by the kernel)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, 0))
    return s


def is_closed(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except socket.timeout:
        return False
    except (OSError, ssl.SSLError):
        return True


# ---- the legitimate client ----

def cmd_legit(a):
    """OPTIONS over one TCP connection every `interval` s until `stop` exists
    or `seconds` pass; one line per request: time latency_ms ok rss_kB fds.
    A broken connection is reopened (failures are recorded)."""
    out = open(a.out, "w", buffering=1)
    end = time.time() + a.seconds
    sock = None
    n = 0
    last_sample = 0.0
    rss = fds = 0
    while time.time() < end and not os.path.exists(a.stop):
        if sock is None:
            try:
                sock = bound(a.src, 0)
                sock.settimeout(2)
                sock.connect((a.host, a.port))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buf = b""
            except OSError:
                sock = None
                out.write(f"{time.time():.3f} -1 0 {rss} {fds}\n")
                time.sleep(a.interval)
                continue
        n += 1
        tag = f"legit{os.getpid()}n{n}"
        want = f"Call-ID: {tag}\r\n".encode()
        t0 = time.time()
        ok = False
        try:
            sock.sendall(options(a.host, a.port, tag, src=f"{a.src}:{sock.getsockname()[1]}"))
            while time.time() - t0 < 2.0:
                if want in buf:
                    i = buf.find(want)
                    j = buf.find(b"\r\n\r\n", i)
                    ok = buf.rfind(b"SIP/2.0 200", 0, i) >= 0
                    buf = buf[j + 4:] if j >= 0 else b""
                    break
                sock.settimeout(max(0.01, 2.0 - (time.time() - t0)))
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
        except OSError:
            sock.close()
            sock = None
        lat = (time.time() - t0) * 1000
        if time.time() - last_sample > 0.1:
            rss, fds = proc_sample(a.pid)
            last_sample = time.time()
        out.write(f"{t0:.3f} {lat:.2f} {1 if ok else 0} {rss} {fds}\n")
        time.sleep(max(0, a.interval - (time.time() - t0)))
    out.close()
    return 0


def cmd_stats(a):
    """Summarise the legitimate client's lines between two times: answered
    share at least --min-ratio, 99th percentile latency at most --max-p99
    ms, sipsd's peak RSS at most --max-rss kB."""
    lat, ok, fail, rss = [], 0, 0, 0
    with open(a.file) as f:
        for line in f:
            p = line.split()
            if len(p) != 5:
                continue
            t = float(p[0])
            if t < a.start or t > a.end:
                continue
            if p[2] == "1":
                ok += 1
                lat.append(float(p[1]))
            else:
                fail += 1
            rss = max(rss, int(p[3]))
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    good = (ok > 0 and ok / (ok + fail) >= a.min_ratio and pct(0.99) <= a.max_p99 and rss <= a.max_rss
            and lat[-1] <= a.max_ms)
    print(f"{a.name}: legit_ok={ok} legit_failed={fail} p50_ms={pct(0.5):.2f} p99_ms={pct(0.99):.2f} "
          f"max_ms={lat[-1] if lat else float('nan'):.2f} peak_rss_kB={rss}")
    return 0 if good else 1


# ---- floods ----

def cmd_conns(a):
    """Open `count` TCP connections from the source addresses SRC_PREFIX.1..
    (`per_src` each), hold them `hold` s, check that `probe` of them answer
    an OPTIONS, then close them all."""
    start = time.time()
    conns = []
    failed = 0
    for i in range(a.count):
        if time.time() - start > a.max_seconds:
            break
        src = f"{a.src_prefix}.{1 + i // a.per_src}"
        try:
            s = bound(src, 0)
            s.settimeout(3)
            s.connect((a.host, a.port))
            conns.append(s)
        except OSError:
            failed += 1
    opened = time.time() - start
    rss_peak, fds_peak = proc_sample(a.pid)
    # Held connections are real ones: a spread of them answers OPTIONS.
    step = max(1, len(conns) // max(1, a.probe))
    answered = probed = 0
    for s in conns[::step][:a.probe]:
        probed += 1
        tag = f"held{probed}"
        try:
            s.sendall(options(a.host, a.port, tag))
            s.settimeout(2)
            data = b""
            t0 = time.time()
            while b"\r\n\r\n" not in data and time.time() - t0 < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            answered += data.startswith(b"SIP/2.0 200")
        except OSError:
            pass
    # Any connection the server closed while held?
    r = ready(conns, 0)
    closed = 0
    for s in r:
        try:
            if s.recv(65536, socket.MSG_PEEK) == b"":
                closed += 1
        except OSError:
            closed += 1
    left = a.hold - (time.time() - start - opened)
    end = time.time() + max(0, left)
    while time.time() < end:
        time.sleep(0.1)
        rss, fds = proc_sample(a.pid)
        rss_peak, fds_peak = max(rss_peak, rss), max(fds_peak, fds)
    for s in conns:
        s.close()
    ok = len(conns) == a.count and answered == probed and closed == 0
    print(f"conns: opened={len(conns)} connect_failed={failed} open_s={opened:.2f} held_closed={closed} "
          f"probed={probed} probe_answered={answered} sipsd_peak_fds={fds_peak} sipsd_peak_rss_kB={rss_peak}")
    return 0 if ok else 1


def client_hello():
    """The bytes of a real TLS ClientHello (from a memory BIO)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname="example.com")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def tls_options_once(host, port, ca, timeout=3.0):
    """A whole TLS handshake and an OPTIONS: (ok, seconds)."""
    t0 = time.time()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        s = ctx.wrap_socket(raw, server_hostname="example.com")
        s.sendall(options(host, port, f"tlslegit{time.time_ns()}", "TLS"))
        data = b""
        while b"\r\n\r\n" not in data and time.time() - t0 < timeout:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        return data.startswith(b"SIP/2.0 200"), time.time() - t0
    except (OSError, ssl.SSLError):
        return False, time.time() - t0


def cmd_handshakes(a):
    """`count` TLS connections that never finish the handshake: half send
    nothing, half send the first half of a ClientHello. Expect every one to
    be closed by sipsd at its handshake timeout (between `min` and `max`
    s), while a full TLS client still gets its OPTIONS answered."""
    hello = client_hello()
    start = time.time()
    conns = []
    for i in range(a.count):
        s = bound(f"{a.src_prefix}.{1 + i // a.per_src}", 0)
        s.settimeout(3)
        try:
            s.connect((a.host, a.port))
        except OSError:
            s.close()
            continue
        if i % 2:
            s.sendall(hello[:len(hello) // 2])
        s.setblocking(False)
        conns.append(s)
    opened = time.time() - start
    rss_peak, fds_peak = proc_sample(a.pid)
    tls_ok = tls_n = 0
    tls_lat = []
    closed_at = {}
    deadline = start + a.max
    while len(closed_at) < len(conns) and time.time() < deadline:
        live = [s for s in conns if s not in closed_at]
        r = ready(live, 0.05)
        for s in r:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if d == b"":
                closed_at[s] = time.time() - start
        rss, fds = proc_sample(a.pid)
        rss_peak, fds_peak = max(rss_peak, rss), max(fds_peak, fds)
        # A legitimate TLS client meanwhile (a few, spread over the stall).
        if tls_n < a.tls_probes and time.time() - start > (tls_n + 1) * a.min / (a.tls_probes + 1):
            ok, took = tls_options_once(a.host, a.port, a.ca)
            tls_n += 1
            tls_ok += ok
            tls_lat.append(took * 1000)
    for s in conns:
        s.close()
    times = sorted(closed_at.values())
    early = sum(1 for t in times if t < a.min)
    ok = (len(conns) == a.count and len(times) == len(conns) and early <= a.allow_early and tls_ok == tls_n)
    print(f"handshakes: stalled={len(conns)} open_s={opened:.2f} closed_by_server={len(times)} "
          f"first_close_s={times[0] if times else float('nan'):.2f} "
          f"last_close_s={times[-1] if times else float('nan'):.2f} closed_early={early} "
          f"tls_client_ok={tls_ok}/{tls_n} tls_client_max_ms={max(tls_lat) if tls_lat else 0:.1f} "
          f"sipsd_peak_fds={fds_peak} sipsd_peak_rss_kB={rss_peak}")
    return 0 if ok else 1


def cmd_slowloris(a):
    """`count` connections each sending one byte every `every` s: TCP ones
    the first line and endless header bytes of a request, TLS ones a
    ClientHello. Bounded by `seconds`. Expect sipsd to close each within
    `max_close` s of its start (handshake timeout for TLS; for TCP, a
    request that does not complete within the idle timeout)."""
    hello = client_hello()
    head = (f"OPTIONS sip:{a.host}:{a.port} SIP/2.0\r\nVia: SIP/2.0/TCP {a.src_prefix}.1:9;branch=z9hG4bKslow\r\n"
            "X-Slow: ").encode()
    conns = []
    for i in range(a.count):
        s = bound(f"{a.src_prefix}.{1 + i // a.per_src}", 0)
        s.settimeout(3)
        s.connect((a.host, a.tls_port if a.tls else a.port))
        s.setblocking(False)
        conns.append(s)
    payload = hello if a.tls else head
    start = time.time()
    sent = {s: 0 for s in conns}
    closed_at = {}
    nxt = start
    while time.time() - start < a.seconds and len(closed_at) < len(conns):
        now = time.time()
        if now >= nxt:
            for s in conns:
                if s in closed_at:
                    continue
                i = sent[s]
                byte = payload[i:i + 1] if i < len(payload) else b"a"
                try:
                    s.send(byte)
                    sent[s] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at[s] = now - start
            nxt += a.every
        live = [s for s in conns if s not in closed_at]
        r = ready(live, max(0, min(nxt - time.time(), 0.05)))
        for s in r:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if d == b"":
                closed_at[s] = time.time() - start
    took = time.time() - start
    for s in conns:
        s.close()
    times = sorted(closed_at.values())
    kind = "tls" if a.tls else "tcp"
    late = sum(1 for t in times if t > a.max_close) + (len(conns) - len(times))
    print(f"slowloris-{kind}: conns={len(conns)} bytes_each_max={max(sent.values())} ran_s={took:.2f} "
          f"closed_by_server={len(times)} first_close_s={times[0] if times else float('nan'):.2f} "
          f"last_close_s={times[-1] if times else float('nan'):.2f} not_closed_within_{a.max_close:g}s={late}")
    return 0 if late == 0 else 1


def cmd_noread(a):
    """`count` peers send OPTIONS in batches and never read: sipsd must close
    each at its write-queue limit. Bounded by `seconds`."""
    conns = []
    for i in range(a.count):
        s = bound(f"{a.src_prefix}.{1 + i}", 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(3)
        s.connect((a.host, a.port))
        s.setblocking(False)
        conns.append(s)
    batch = b"".join(options(a.host, a.port, f"noread{k}" + "x" * 200) for k in range(100))
    start = time.time()
    closed = set()
    sent = {s: 0 for s in conns}
    pos = {s: 0 for s in conns}
    rss_peak = fds_peak = 0
    while time.time() - start < a.seconds and len(closed) < len(conns):
        live = [s for s in conns if s not in closed]
        w = ready(live, 0.05, write=True)
        for s in w:
            try:
                n = s.send(batch[pos[s]:])
                pos[s] += n
                if pos[s] >= len(batch):
                    pos[s] = 0
                    sent[s] += 100
            except BlockingIOError:
                pass
            except OSError:
                closed.add(s)
        # A peer whose sends block for good may have been closed already:
        # a zero-length peek tells (its receive queue may be full, though).
        for s in live:
            if s in closed:
                continue
            try:
                s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(s)
        rss, fds = proc_sample(a.pid)
        rss_peak, fds_peak = max(rss_peak, rss), max(fds_peak, fds)
    took = time.time() - start
    for s in conns:
        s.close()
    print(f"no-reader: peers={len(conns)} requests_sent={sum(sent.values())} closed_by_server={len(closed)} "
          f"ran_s={took:.2f} sipsd_peak_fds={fds_peak} sipsd_peak_rss_kB={rss_peak}")
    return 0 if len(closed) == len(conns) else 1


def cmd_register(a):
    """`count` REGISTERs for one AOR over UDP, each with a new Contact (one
    Call-ID, rising CSeq: one UA adding bindings), in windows of 64. Expect
    exactly `limit` 200s then 403s, and a final query listing `limit`
    bindings; a REGISTER for another AOR still gets its 200."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((a.src, 0))
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    port = u.getsockname()[1]
    dst = (a.host, a.port)

    def reg(aor, cseq, contact, cid):
        c = f"Contact: <{contact}>\r\n" if contact else ""
        return (f"REGISTER sip:example.com SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {a.src}:{port};branch=z9hG4bKreg{cid}{cseq};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:{aor}>;tag=f{cid}\r\n"
                f"To: <sip:{aor}>\r\n"
                f"Call-ID: {cid}\r\n"
                f"CSeq: {cseq} REGISTER\r\n"
                f"{c}Expires: 600\r\n"
                "Content-Length: 0\r\n\r\n").encode()

    codes = {}
    got = {}
    start = time.time()
    cid = f"flood{os.getpid()}"
    pending = {}
    cseq = 0
    while cseq < a.count and time.time() - start < a.seconds:
        window = []
        for _ in range(min(64, a.count - cseq)):
            cseq += 1
            m = reg("flood@example.com", cseq, f"sip:flood{cseq}@{a.src}:{5000 + cseq % 60000}", cid)
            pending[cseq] = m
            window.append(cseq)
            u.sendto(m, dst)
        wend = time.time() + 2
        while any(c not in got for c in window) and time.time() < wend:
            r = ready([u], 0.2)
            if not r:
                for c in window:  # retransmit what is unanswered (UDP)
                    if c not in got:
                        u.sendto(pending[c], dst)
                continue
            d = u.recv(65536)
            m = re.search(rb"\r\nCSeq: (\d+) REGISTER", d)
            st = re.match(rb"SIP/2\.0 (\d{3})", d)
            if m and st and int(m.group(1)) not in got:
                got[int(m.group(1))] = int(st.group(1))
    took = time.time() - start
    for c, st in got.items():
        codes[st] = codes.get(st, 0) + 1
    # Ordered: the first `limit` accepted, every later one refused.
    ordered_ok = all(got.get(c) == 200 for c in range(1, a.limit + 1)) and \
        all(got.get(c) == 403 for c in range(a.limit + 1, cseq + 1))

    def ask(m):
        u.sendto(m, dst)
        end = time.time() + 3
        while time.time() < end:
            r = ready([u], 0.5)
            if r:
                d = u.recv(65536)
                if b"CSeq: 999999 REGISTER" in d or b"Call-ID: other" in d:
                    return d
            else:
                u.sendto(m, dst)
        return b""
    q = ask(reg("flood@example.com", 999999, None, cid))
    listed = len(re.findall(rb"\r\nContact: ", q))
    o = ask(reg("other@example.com", 1, f"sip:other@{a.src}:5070", "other"))
    other_ok = o.startswith(b"SIP/2.0 200")
    rss, fds = proc_sample(a.pid)
    ok = ordered_ok and listed == a.limit and other_ok and codes.get(200) == a.limit
    print(f"register-flood: sent={cseq} answered={len(got)} codes={dict(sorted(codes.items()))} "
          f"first_{a.limit}_200_rest_403={ordered_ok} bindings_listed={listed} other_aor_200={other_ok} "
          f"ran_s={took:.2f} rate_per_s={len(got) / took if took else 0:.0f} sipsd_rss_kB={rss}")
    return 0 if ok else 1


def cmd_churn(a):
    """Connection churn with a populated location store: register `aors`
    AORs over UDP (one binding each), open `count` TCP connections, close
    them all at once, and time (a) an OPTIONS sent on a fresh connection
    right after the closes and (b) until sipsd's descriptors are back.
    Bounded by `seconds`."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((a.src, 0))
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    port = u.getsockname()[1]
    rss_before = proc_sample(a.pid)[0]
    t0 = time.time()
    sent = got = ok200 = 0
    while sent < a.aors and time.time() - t0 < a.seconds:
        for i in range(sent, min(a.aors, sent + 32)):
            m = (f"REGISTER sip:example.com SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP {a.src}:{port};branch=z9hG4bKchurn{i}\r\n"
                 "Max-Forwards: 70\r\n"
                 f"From: <sip:churn{i}@example.com>;tag=c{i}\r\n"
                 f"To: <sip:churn{i}@example.com>\r\n"
                 f"Call-ID: churn{i}\r\n"
                 "CSeq: 1 REGISTER\r\n"
                 f"Contact: <sip:churn{i}@{a.src}:5070>\r\n"
                 "Expires: 3600\r\n"
                 "Content-Length: 0\r\n\r\n").encode()
            u.sendto(m, (a.host, a.port))
        sent = min(a.aors, sent + 32)
        while got < sent and ready([u], 0.2):
            d = u.recv(65536)
            got += 1
            ok200 += d.startswith(b"SIP/2.0 200")
    reg_s = time.time() - t0
    rss_store, base = proc_sample(a.pid)
    conns = []
    for i in range(a.count):
        s = bound(f"{a.src_prefix}.{1 + i // a.per_src}", 0)
        s.settimeout(3)
        try:
            s.connect((a.host, a.port))
            conns.append(s)
        except OSError:
            s.close()
    time.sleep(0.3)
    peak = proc_sample(a.pid)[1]
    t1 = time.time()
    for s in conns:
        s.close()
    # A fresh client right after the closes.
    probe_ms = -1.0
    try:
        g = bound(a.src, 0)
        g.settimeout(max(1.0, a.seconds))
        g.connect((a.host, a.port))
        g.sendall(options(a.host, a.port, f"churnprobe{os.getpid()}"))
        if g.recv(4096).startswith(b"SIP/2.0 200"):
            probe_ms = (time.time() - t1) * 1000
        g.close()
    except OSError:
        pass
    while proc_sample(a.pid)[1] > base and time.time() - t1 < a.seconds:
        time.sleep(0.01)
    closes_s = time.time() - t1
    per_aor = (rss_store - rss_before) / a.aors if a.aors else 0
    print(f"churn: aors_registered={ok200}/{a.aors} register_s={reg_s:.2f} sipsd_rss_with_store_kB={rss_store} "
          f"store_kB_per_aor={per_aor:.1f} "
          f"conns={len(conns)} sipsd_peak_fds={peak} probe_after_close_ms={probe_ms:.0f} "
          f"closes_processed_s={closes_s:.2f} closes_per_s={len(conns) / closes_s if closes_s else 0:.0f}")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("legit")
    for k in ("host", "src", "out", "stop"):
        x.add_argument(k)
    x.add_argument("port", type=int); x.add_argument("pid", type=int)
    x.add_argument("--interval", type=float, default=0.02); x.add_argument("--seconds", type=float, default=120)
    x = sub.add_parser("stats")
    x.add_argument("name"); x.add_argument("file"); x.add_argument("start", type=float); x.add_argument("end", type=float)
    x.add_argument("--min-ratio", type=float, default=0.99); x.add_argument("--max-p99", type=float, default=500)
    x.add_argument("--max-rss", type=int, default=1 << 30)
    x.add_argument("--max-ms", type=float, default=1e9)
    for name in ("conns", "handshakes", "slowloris", "noread", "register", "churn"):
        x = sub.add_parser(name)
        x.add_argument("host"); x.add_argument("port", type=int); x.add_argument("pid", type=int)
        x.add_argument("--src-prefix", default="127.0.72"); x.add_argument("--src", default="127.0.72.250")
        x.add_argument("--count", type=int, default=100); x.add_argument("--per-src", type=int, default=100)
        x.add_argument("--seconds", type=float, default=10); x.add_argument("--max-seconds", type=float, default=30)
        x.add_argument("--hold", type=float, default=2); x.add_argument("--probe", type=int, default=20)
        x.add_argument("--min", type=float, default=0); x.add_argument("--max", type=float, default=10)
        x.add_argument("--ca"); x.add_argument("--tls-probes", type=int, default=3)
        x.add_argument("--tls", action="store_true"); x.add_argument("--tls-port", type=int, default=0)
        x.add_argument("--every", type=float, default=0.05); x.add_argument("--max-close", type=float, default=5)
        x.add_argument("--limit", type=int, default=16)
        x.add_argument("--allow-early", type=int, default=0)
        x.add_argument("--aors", type=int, default=10000)
    a = p.parse_args()
    return {"legit": cmd_legit, "stats": cmd_stats, "conns": cmd_conns, "handshakes": cmd_handshakes,
            "slowloris": cmd_slowloris, "noread": cmd_noread, "register": cmd_register,
            "churn": cmd_churn}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
PYEOF
FL="python3 $PY"

start_sipsd f "$TEST_TMP/f.conf"
log="$TEST_TMP/f.log"
P=$PID_f
fds() { ls "/proc/$P/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$P/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
# kv KEY LINE: the value of KEY=VALUE in a result line.
kv() { sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" <<<"$2" | head -n 1; }
# fds_settle [SECONDS]: wait (at most SECONDS, default 10) until sipsd's
# descriptors are back to the baseline; print the count.
fds_settle() {
  local n
  for _ in $(seq $((${1:-10} * 10))); do
    n=$(fds)
    [ "$n" -le "$BASE_FDS" ] && break
    sleep 0.1
  done
  echo "$n"
}
RSS_START=$(rss)

# The legitimate client: OPTIONS over TCP every 20 ms (bounded: 120 s).
$FL legit "$IP" "$LEGIT" "$TEST_TMP/legit.txt" "$TEST_TMP/legit.stop" 5060 "$P" --seconds 120 &
LEGIT_PID=$!
PIDS+=("$LEGIT_PID")
for _ in $(seq 50); do grep -q ' 1 ' "$TEST_TMP/legit.txt" 2>/dev/null && break; sleep 0.1; done
check "legitimate client answered before the floods" grep -q ' 1 ' "$TEST_TMP/legit.txt"
sleep 0.3
BASE_FDS=$(fds)
echo "# baseline: sipsd fds=$BASE_FDS rss=${RSS_START}kB"

# phase_end NAME START END [SETTLE_S [P99_MS]]: the legitimate client's
# numbers in the window (answered, latency, sipsd's peak RSS); descriptors
# back to the baseline.
phase_end() {
  local name=$1 t0=$2 t1=$3 p99=${5:-$P99_MS} out n
  out=$($FL stats "$name" "$TEST_TMP/legit.txt" "$t0" "$t1" --max-rss $((RSS_MB * 1024)) --max-p99 "$p99") && rc=0 || rc=$?
  echo "# $out"
  check "$name: legitimate client kept getting OPTIONS answered (>= 99%, p99 <= $p99 ms), RSS <= $RSS_MB MiB" [ "$rc" = 0 ]
  n=$(fds_settle "${4:-10}")
  check "$name: sipsd descriptors back to the baseline ($n, baseline $BASE_FDS)" [ "$n" -le "$BASE_FDS" ]
  kill -0 "$P" 2>/dev/null || { not_ok "$name: sipsd is gone"; cat "$log"; finish; }
}

# 1. Many TCP connections opened and held.
t0=$(now)
out=$($FL conns "$IP" 5060 "$P" --count "$CONNS" --per-src 200 --hold 2 --probe 20 --max-seconds 30) || true
echo "# $out"
check "conns: $CONNS TCP connections opened and held, none closed by sipsd" \
  test "$(kv opened "$out")" = "$CONNS" -a "$(kv held_closed "$out")" = 0
check "conns: a spread of the held connections answers OPTIONS" [ "$(kv probe_answered "$out")" = "$(kv probed "$out")" ]
check "conns: sipsd held them all at once (peak fds >= baseline + $CONNS)" \
  [ "$(kv sipsd_peak_fds "$out")" -ge $((BASE_FDS + CONNS)) ]
phase_end conns "$t0" "$(now)"

# 2. TLS handshakes that never finish (half silent, half a partial
# ClientHello), below max_handshakes: each is closed at the handshake
# timeout, and a full TLS client still gets through meanwhile.
t0=$(now)
hs_min=$(awk "BEGIN {print $HS_TIMEOUT_MS / 1000 - 0.2}")
hs_max=$(awk "BEGIN {print $HS_TIMEOUT_MS / 1000 + 3}")
out=$($FL handshakes "$IP" 5061 "$P" --count "$HANDSHAKES" --per-src 100 --min "$hs_min" --max "$hs_max" \
  --ca "$pki/ca.pem" --tls-probes 3) || true
echo "# $out"
check "handshakes: $HANDSHAKES stalled handshakes all closed by sipsd at the handshake timeout" \
  test "$(kv closed_by_server "$out")" = "$HANDSHAKES" -a "$(kv closed_early "$out")" = 0
check "handshakes: a TLS client completes its handshake and OPTIONS meanwhile" \
  [ "$(kv tls_client_ok "$out")" = 3/3 ]
phase_end handshakes "$t0" "$(now)"

# 2b. More stalled handshakes than max_handshakes, from a few addresses
# (each well under max_conns_per_ip): the surplus is refused at once, the
# rest closed at the timeout.
over=$((MAX_HANDSHAKES + 88))
t0=$(now)
out=$($FL handshakes "$IP" 5061 "$P" --count "$over" --per-src 200 --min "$hs_min" --max "$hs_max" \
  --ca "$pki/ca.pem" --tls-probes 3 --allow-early "$over") || true
echo "# $out"
check "handshakes over the limit: all $over closed by sipsd (surplus refused, rest at the timeout)" \
  [ "$(kv closed_by_server "$out")" = "$over" ]
check "handshakes over the limit: refusal logged (per address, before the shared pool fills)" \
  grep -Eq "event=conn.refused .*reason=max_handshakes(_per_ip limit=100| limit=$MAX_HANDSHAKES)" "$log"
# was BUG: the handshake limit is one pool for the whole process, so 512 stalled
# handshakes from three addresses lock every TLS client out for as long as
# they are renewed (handshake_timeout_ms at a time). Expected: a full TLS
# client still completes (a per-address handshake cap, or evicting the
# oldest stalled handshake when the pool is full). Got: tls_client_ok=0/3.
check "handshakes over the limit: a TLS client from another address still completes its handshake" \
  [ "$(kv tls_client_ok "$out")" = 3/3 ]
phase_end handshakes-over-limit "$t0" "$(now)"

# 3. Slowloris: one byte every FLOOD_SLOW_EVERY s per connection (bounded: 2 x idle
# timeout + 2 s). TLS: a ClientHello byte by byte, closed at the handshake
# timeout. TCP: a request whose header never ends.
t0=$(now)
out=$($FL slowloris "$IP" 5060 "$P" --tls --tls-port 5061 --count "$SLOW" --per-src 50 --every "$SLOW_EVERY" \
  --seconds $((IDLE_TIMEOUT_MS * 2 / 1000 + 2)) --max-close "$(awk "BEGIN {print $HS_TIMEOUT_MS / 1000 + 1}")") || true
echo "# $out"
check "slowloris TLS: every byte-by-byte handshake closed at the handshake timeout" \
  [ "$(kv closed_by_server "$out")" = "$SLOW" ]
out=$($FL slowloris "$IP" 5060 "$P" --count "$SLOW" --per-src 50 --src-prefix "$SRC" --every "$SLOW_EVERY" \
  --seconds $((IDLE_TIMEOUT_MS * 2 / 1000 + 2)) --max-close "$(awk "BEGIN {print $IDLE_TIMEOUT_MS / 1000 + 1.5}")") || true
echo "# $out"
# was BUG: the idle timer restarts on every byte received (conn_read sets
# last_rx_ms), so a request whose header grows by one byte every 0.05 s is
# never closed until it reaches the stream buffer limit (about 70 KB: an
# hour at this pace, 19 h at one byte a second), and enough such peers hold
# every connection slot. Expected: closed about idle_timeout_ms after the
# message started (a per-message deadline). Got: none closed.
check "slowloris TCP: every never-ending header closed within idle timeout + 1.5 s" \
  [ "$(kv closed_by_server "$out")" = "$SLOW" ]
phase_end slowloris "$t0" "$(now)"

# 4. Peers that never read: closed at the write-queue limit.
t0=$(now)
out=$($FL noread "$IP" 5060 "$P" --count "$NOREAD" --seconds 20) || true
echo "# $out"
check "no-reader: all $NOREAD peers closed by sipsd at the write-queue limit" \
  [ "$(kv closed_by_server "$out")" = "$NOREAD" ]
check "no-reader: write-queue limit logged" grep -q "event=conn.write_queue_full .*limit=$WQ_LIMIT" "$log"
# The peers send about 100,000 requests a second to fill sipsd's socket
# buffers and then its write queues: the legitimate client waits its turn
# behind them (up to 450 ms measured), hence twice the p99 bound here.
phase_end no-reader "$t0" "$(now)" 10 $((P99_MS * 2))

# 5. A REGISTER flood for one AOR, a new Contact each time: 16 bindings,
# then 403 for every further one; the store stays at 16.
t0=$(now)
out=$($FL register "$IP" 5060 "$P" --src "$SRC.250" --count "$REGISTERS" --limit 16 --seconds 20) || true
echo "# $out"
check "register-flood: the first 16 contacts bound, every later one 403" \
  test "$(kv first_16_200_rest_403 "$out")" = True -a "$(kv answered "$out")" = "$REGISTERS"
check "register-flood: the AOR lists 16 bindings, another AOR still registers" \
  test "$(kv bindings_listed "$out")" = 16 -a "$(kv other_aor_200 "$out")" = True
phase_end register-flood "$t0" "$(now)"

# 6. Connection churn with a populated store: CHURN_AORS AORs registered,
# then CONNS connections opened and closed at once. Closing a connection
# must not cost in proportion to the store.
RSS_MB=$((RSS_MB + CHURN_AORS * 6 / 1024))
t0=$(now)
out=$($FL churn "$IP" 5060 "$P" --aors "$CHURN_AORS" --count "$CONNS" --per-src 200 --src "$SRC.249" --seconds 25) || true
echo "# $out"
check "churn: $CHURN_AORS AORs registered" [ "$(kv aors_registered "$out")" = "$CHURN_AORS/$CHURN_AORS" ]
check "churn: with $CHURN_AORS AORs stored, RSS $(kv sipsd_rss_with_store_kB "$out") kB <= $RSS_MB MiB ($(kv store_kB_per_aor "$out") kB per AOR)" \
  [ "$(kv sipsd_rss_with_store_kB "$out")" -le $((RSS_MB * 1024)) ]
# was BUG: every connection close runs location_flow_closed(), which walks all
# 65,536 buckets and every AOR of the store under the store's one lock, on
# the worker that owns the connection. With 10,000 AORs registered, closing
# 2,000 connections stalls both workers for seconds (3.2-9.6 s measured; 156
# closes/s with 20,000 AORs) and nobody is answered meanwhile. Expected: a
# per-connection index of its bindings (or none to look up for a connection
# that registered nothing). Got: probe_after_close_ms in the thousands.
check "churn: a new client right after the closes is answered within 500 ms" \
  test "$(kv probe_after_close_ms "$out")" -ge 0 -a "$(kv probe_after_close_ms "$out")" -le 500
# was BUG (the same): the legitimate client, too, waits out the stall.
phase_end churn "$t0" "$(now)" 30

# After all: the legitimate client over the whole run, sipsd still answers
# over every transport and stops cleanly.
touch "$TEST_TMP/legit.stop"
for _ in $(seq 50); do kill -0 "$LEGIT_PID" 2>/dev/null || break; sleep 0.1; done
out=$($FL stats all "$TEST_TMP/legit.txt" 0 1e12 --max-rss $((RSS_MB * 1024)) --max-p99 "$P99_MS") && rc=0 || rc=$?
echo "# $out"
check "whole run: legitimate client >= 99% answered, RSS <= $RSS_MB MiB" [ "$rc" = 0 ]
echo "# sipsd rss: start=${RSS_START}kB end=$(rss)kB; fds: baseline=$BASE_FDS end=$(fds)"
for u in "sip:$IP:5060" "sip:$IP:5060;transport=tcp"; do
  "$SIPSCTL" options "$u" --timeout 5 >/dev/null && rc=0 || rc=$?
  check "sipsd still answers OPTIONS ($u)" [ "$rc" = 0 ]
done
"$SIPSCTL" options "sips:example.com" --via "$IP:5061" --ca "$pki/ca.pem" --timeout 5 >/dev/null && rc=0 || rc=$?
check "sipsd still answers OPTIONS over TLS" [ "$rc" = 0 ]
stop_pid "$P"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$log"
[ "$FAILED" -eq 0 ] || { echo "== sipsd log (last 30 lines)"; tail -n 30 "$log"; }
finish
