#!/usr/bin/env bash
# t7_sips.sh: spec §3 T7, URI promotion (RFC 5630; spec rules 13-15). bob
# registers a sip: contact over TLS at P2. A sip:bob@example.net request
# that arrived over TLS is forwarded over TLS at every hop (best-effort TLS:
# DNS lists TCP first for example.net, and nothing listens there) and
# retargeted to bob's sip: contact without promotion to sips:; the whole
# dialog (INVITE, ACK, BYE) reaches bob. Variant: sips:bob@example.net when
# bob's only contact is sip: gets 480 with Warning 380 "SIPS Not Allowed".
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.52.1 P2_IP=127.0.52.2 DNS_IP=127.0.52.53
source "$(dirname "$0")/lib/trapezoid.sh"
source "$(dirname "$0")/lib/tcases.sh"
# example.net lists TCP before TLS (NAPTR preference 10 < 50); P2 has no TCP
# listener, so any TCP attempt by P1 shows in its debug log as a failed
# connect to P2_IP:5060.
tc_setup \
  'naptr-record=example.net,10,10,"s","SIP+D2T","","_sip._tcp.example.net"' \
  "srv-host=_sip._tcp.example.net,p2.example.net,5060,10,10"
TC_P1_GLOBAL=("log_level = debug")
tc_p1 p1 "$P1_IP"
TC_P1_GLOBAL=()
tc_p2 p2 good

# p1_tls_before_tcp: in P1's log since its mark, a TLS connection to P2 was
# made and no TCP connect to P2 failed before it (TLS tried first).
p1_tls_before_tcp() {
  tc_new_has p1 "event=tls\.peer .*dir=out .*peer=${P2_IP}:5061 .*sni=example\.net .*authenticated=yes" &&
    tc_new p1 | awk -v tcp="proto=tcp peer=${P2_IP}:5060" -v tls="event=tls.peer" '
      index($0, tls) && index($0, "dir=out") { exit 0 }
      index($0, "event=conn.close") && index($0, tcp) { exit 1 }'
}

# sipraw_invite HOST:PORT TARGET FROM: INVITE TARGET over TLS (SNI
# example.com, chain verified against the test CA) as a bare UA, ACK the
# final response and print its header block. Bounded: 8 s.
sipraw_invite() {
  python3 - "$1" "$2" "$3" "$PKI/ca.pem" <<'PY'
import os, socket, ssl, sys, time
hostport, target, frm, ca = sys.argv[1:5]
host, port = hostport.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the identity is a URI SAN (RFC 5922); the chain is verified
t = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=8),
                    server_hostname="example.com")
local = "%s:%d" % t.getsockname()[:2]
branch = "z9hG4bK" + os.urandom(8).hex()
head = (f"Via: SIP/2.0/TLS {local};branch={branch};rport\r\nMax-Forwards: 70\r\n"
        f"From: <{frm}>;tag=t7raw\r\n")
t.sendall((f"INVITE {target} SIP/2.0\r\n{head}To: <{target}>\r\nCall-ID: {branch}@t7\r\n"
           f"CSeq: 1 INVITE\r\nContact: <sips:alice@{local};ob>\r\nContent-Length: 0\r\n\r\n").encode())
buf, deadline = b"", time.time() + 8
while time.time() < deadline:
    while b"\r\n\r\n" in buf:
        hdr, rest = buf.split(b"\r\n\r\n", 1)
        lines = hdr.decode(errors="replace").split("\r\n")
        cl = 0
        for l in lines[1:]:
            name, _, val = l.partition(":")
            if name.strip().lower() in ("content-length", "l"):
                cl = int(val.strip())
        if len(rest) < cl:
            break
        buf = rest[cl:]
        if lines[0].startswith("SIP/2.0 ") and int(lines[0].split()[1]) >= 200:
            to = next((l for l in lines if l.lower().startswith("to:")), f"To: <{target}>")
            t.sendall((f"ACK {target} SIP/2.0\r\n{head}{to}\r\nCall-ID: {branch}@t7\r\n"
                       "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode())
            print("\n".join(lines))
            t.close()
            sys.exit(0)
    t.settimeout(max(0.1, deadline - time.time()))
    try:
        data = t.recv(65536)
    except (socket.timeout, OSError):
        break
    if not data:
        break
    buf += data
print("no final response")
sys.exit(1)
PY
}

# ---- T7: sip: over TLS, retargeted to bob's sip: contact ----
BOB_AOR=sip:bob@example.net
if tc_bob T7 "$BOB_AOR" "$P2_IP:5061" --transport tls; then ok "T7: bob registered a sip: contact over TLS"
else not_ok "T7: bob registered a sip: contact over TLS"; fi
check "T7: bob's binding is on a TLS flow at P2" \
  has "$TEST_TMP/p2.log" 'event=registrar aor=bob@example\.net status=200 .*proto=tls'
tc_mark p1; tc_mark p2
TC_ALICE=sip:alice@example.com tc_call T7 sip:bob@example.net --transport tls
check "T7: the call completes" [ "$CALL_RC" = 0 ]
tc_bob_done
check "T7: bob received the INVITE with a sip: Request-URI (his contact, not promoted)" \
  grep -Eq '<-- INVITE sip:bob@127\.0\.0\.1:[0-9]+' "$TEST_TMP/bob-T7.out"
check "T7: bob never saw a sips: Request-URI" lacks "$TEST_TMP/bob-T7.out" '<-- [A-Z]+ sips:'
check "T7: bob answered the call on his TLS flow" has "$TEST_TMP/bob-T7.out" 'result: answered 1 call'
check "T7: the BYE reached bob (sip:, along the route set)" grep -Eq '<-- BYE sip:bob@' "$TEST_TMP/bob-T7.out"
# BUG: P1 forwards the 2xx ACK statelessly (proxy.c forward_ack ->
# stateless_resolved_cb) to the first RFC 3263 target, TCP here, ignoring
# best-effort TLS (rule 14) although the ACK arrived over TLS and a verified
# TLS connection to P2 is open; the TCP connect fails and the ACK is lost.
if tc_new_lacks p1 "event=conn\.close .*proto=tcp .*peer=${P2_IP}:5060"; then
  ok "T7: P1 never tried TCP towards P2 during the dialog (ACK and BYE over TLS too)"
else
  not_ok "T7: P1 never tried TCP towards P2 during the dialog (ACK and BYE over TLS too)"
  echo "# BUG: P1 sent a request of the dialog (the stateless 2xx ACK) over TCP:"
  tc_new p1 | grep -E "event=conn\.close .*proto=tcp .*peer=${P2_IP}:5060" | sed 's/^/#   /'
fi
if has "$TEST_TMP/bob-T7.out" '<-- ACK sip:bob@'; then
  ok "T7: the ACK for the 200 reached bob"
else
  not_ok "T7: the ACK for the 200 reached bob"
  echo "# BUG: bob never received the 2xx ACK (P1 sent it over TCP, see above)"
fi
check "T7: P1 forwarded the INVITE over TLS (TLS tried first, although DNS lists TCP first)" \
  p1_tls_before_tcp
check "T7: P2 received it over mutual TLS from example.com" \
  tc_new_has p2 'event=tls\.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}'
check "T7: no scheme rewrite in the Record-Route (sip: URIs, as the Request-URI)" \
  bash -c "grep -E 'Record-Route:' '$TEST_TMP/bob-T7.out' | grep -q '<sip:' && ! grep -E 'Record-Route:' '$TEST_TMP/bob-T7.out' | grep -q '<sips:'"
check "T7: transport=tls never generated by the proxies (RFC 5630 §3.2)" \
  bash -c "! grep -E '(Record-Route|Route):' '$TEST_TMP/bob-T7.out' '$TEST_TMP/alice-T7.out' | grep -qi 'transport=tls'"

# The same with a sips: caller (From sips:, Request-URI sip:).
tc_mark p1
if tc_bob T7b "$BOB_AOR" "$P2_IP:5061" --transport tls; then ok "T7 (sips: caller): bob registered"
else not_ok "T7 (sips: caller): bob registered"; fi
tc_call T7b sip:bob@example.net
check "T7 (sips: caller): the call completes" [ "$CALL_RC" = 0 ]
tc_bob_done
check "T7 (sips: caller): bob received a sip: Request-URI" \
  grep -Eq '<-- INVITE sip:bob@127\.0\.0\.1:[0-9]+' "$TEST_TMP/bob-T7b.out"
# BUG: the same stateless 2xx ACK sent over TCP and lost as above.
if has "$TEST_TMP/bob-T7b.out" '<-- ACK sip:bob@' &&
   tc_new_lacks p1 "event=conn\.close .*proto=tcp .*peer=${P2_IP}:5060"; then
  ok "T7 (sips: caller): the ACK for the 200 reached bob, nothing sent over TCP"
else
  not_ok "T7 (sips: caller): the ACK for the 200 reached bob, nothing sent over TCP"
  echo "# BUG: the 2xx ACK went over TCP (P1) and never reached bob"
fi

# ---- T7 variant: sips: request, bob's only contact is sip: ----
if tc_bob T7v "$BOB_AOR" "$P2_IP:5061" --transport tls; then ok "T7 variant: bob registered a sip: contact"
else not_ok "T7 variant: bob registered a sip: contact"; fi
tc_call T7v sips:bob@example.net
check "T7 variant: the call fails" [ "$CALL_RC" != 0 ]
check "T7 variant: alice gets 480" has "$TEST_TMP/alice-T7v.out" 'call failed with 480'
# The Warning header as alice's UA receives it (sipsctl prints only status
# lines): a raw TLS UA sends the same INVITE through P1.
sipraw_invite "$P1_IP:5061" sips:bob@example.net sips:alice@example.com >"$TEST_TMP/raw-T7v.out" 2>&1 || true
check "T7 variant: the raw UA also gets 480 through P1" has "$TEST_TMP/raw-T7v.out" '^SIP/2\.0 480 '
check "T7 variant: the 480 carries Warning 380 \"SIPS Not Allowed\"" \
  has "$TEST_TMP/raw-T7v.out" '^Warning: 380 [^ ]+ "SIPS Not Allowed"'
stop_pid "$BOB_PID"
check "T7 variant: bob never saw the INVITE (no sips: to sip: downgrade)" \
  lacks "$TEST_TMP/bob-T7v.out" '<-- INVITE'

tc_stop p1; tc_stop p2
if [ "$FAILED" -ne 0 ]; then
  tc_dump alice-T7.out bob-T7.out alice-T7b.out bob-T7b.out alice-T7v.out bob-T7v.out raw-T7v.out p1.log p2.log
fi
finish
