#!/usr/bin/env bash
# cluster.sh: scale-out (docs/scaling.md). Three sipsd nodes serve
# example.com behind its SRV records (n1 priority 10, n2 20, n3 30), all
# with the same domain certificate (URI:sip:example.com) and one Redis
# location store; P2 serves example.net. Checks:
#  - UAs registered on different nodes call each other: the node a call
#    reaches hands it, over mutual TLS, to the node holding the callee's
#    flow (Route with that node's flow token); in-dialog requests find the
#    flow again from any node, the caller's BYE and the callee's; calls
#    across domains both ways;
#  - a node killed (SIGKILL): the others drop its flows' bindings after
#    node_timeout_ms and log it; a call to its UA gets 404 at once instead
#    of a timeout; the node restarted cleans what its earlier life left and
#    its UA registers again;
#  - Redis killed and restarted (append-only file): REGISTER gets 503
#    meanwhile, the nodes reconnect, and every binding Redis kept still
#    routes calls;
#  - a node that starts while Redis is down answers 503 until Redis is
#    back, then removes its earlier process's bindings before storing any.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
NET=127.0.64
N1=$NET.1 N2=$NET.2 N3=$NET.3
P1_IP=$N1 P2_IP=$NET.10 DNS_IP=$NET.53
REDIS_IP=$NET.100 REDIS_PORT=6379
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

command -v redis-server >/dev/null || { echo "redis-server is not installed"; exit 1; }
mkdir -p "$TEST_TMP/redis"
# Redis asks for a password (redis_password_file); redis-cli reads it from
# REDISCLI_AUTH.
openssl rand -hex 16 >"$TEST_TMP/redis.pass"
export REDISCLI_AUTH=$(cat "$TEST_TMP/redis.pass")
start_redis() {
  redis-server --bind "$REDIS_IP" --port "$REDIS_PORT" --dir "$TEST_TMP/redis" \
    --requirepass "$REDISCLI_AUTH" \
    --appendonly yes --appendfsync always --save "" --protected-mode no --daemonize no \
    --logfile "$TEST_TMP/redis.log" &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  for _ in $(seq 50); do
    redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  return 1
}
rcli() { redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" "$@"; }
check "redis-server started" start_redis

# example.com: three nodes; example.net: P2.
trapezoid_dns "$TEST_TMP/records.in"
grep -v -e '^srv-host=_sips._tcp.example.com,' -e '^host-record=p1.example.com,' \
  "$TEST_TMP/records.in" >"$TEST_TMP/records"
for i in 1 2 3; do
  echo "srv-host=_sips._tcp.example.com,n$i.example.com,5061,${i}0,10"
  echo "host-record=n$i.example.com,$NET.$i"
done >>"$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
openssl rand -hex 32 >"$TEST_TMP/cluster.key"

node_conf() { # node_conf N
  local n=$1 others=()
  for m in 1 2 3; do
    [ "$m" = "$n" ] || others+=("[node $m]" "address = $NET.$m:5061")
  done
  trapezoid_conf "$TEST_TMP/n$n.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$NET.$n" \
    "[location]" "store = redis" "redis = $REDIS_IP:$REDIS_PORT" "redis_prefix = example.com" \
    "redis_password_file = $TEST_TMP/redis.pass" "redis_timeout_ms = $((200 * WAIT_SCALE))" \
    "[cluster]" "node = $n" "secret_file = $TEST_TMP/cluster.key" "heartbeat_ms = 300" \
    "node_timeout_ms = 1500" "${others[@]}"
  sed -i "1i control = $TEST_TMP/n$n.sock" "$TEST_TMP/n$n.conf" # a global key: first
}
for n in 1 2 3; do node_conf $n; done
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
check "a node's configuration passes sipsd -t" "$SIPSD" -t -c "$TEST_TMP/n1.conf"
for n in 1 2 3; do start_sipsd n$n "$TEST_TMP/n$n.conf"; done
start_sipsd p2 "$TEST_TMP/p2.conf"
check "every node reached Redis (AUTH with redis_password_file)" \
  bash -c "for n in 1 2 3; do grep -q 'event=location.redis .*node='\$n' state=up' '$TEST_TMP/n'\$n'.log' || exit 1; done"

# answer NAME AOR PROXY [ARGS...]: a UA that registers and answers calls on
# its flow.
answer() {
  local name=$1 aor=$2 proxy=$3; shift 3
  "$SIPSCTL" call --answer --as "$aor" --proxy "$proxy:5061" --ca "$PKI/ca.pem" --calls 9 --wait 120 \
    "$@" >"$TEST_TMP/$name.out" 2>&1 &
  eval "UA_$name=$!"; PIDS+=("$!")
  wait_log "$TEST_TMP/$name.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
}
# call NAME FROM PROXY TO: one call (INVITE, ACK, BYE along the route set).
call() {
  "$SIPSCTL" call --as "$2" --proxy "$3:5061" --ca "$PKI/ca.pem" --to "$4" --hold 1 --timeout 10 \
    >"$TEST_TMP/$1.out" 2>&1
}
to_node() { # to_node N: requests node N handed to another node
  "$SIPSCTL" stats --control "$TEST_TMP/n$1.sock" 2>/dev/null |
    sed -nE 's/^sipsd_requests_to_node_total ([0-9]+)$/\1/p'
}

# node_back N REMOVED UA: node N starts again (its earlier log kept as
# nN-first.log), drops REMOVED bindings of its earlier life, and UA (whose
# flow died with it) registers at it again as UA2.
node_back() {
  local n=$1 removed=$2 ua=$3
  mv "$TEST_TMP/n$n.log" "$TEST_TMP/n$n-first.log"
  start_sipsd "n$n" "$TEST_TMP/n$n.conf"
  check "n$n restarted and removed $removed binding(s) of its earlier life" \
    grep -Eq "event=location.redis node=$n op=restart_cleanup bindings_removed=$removed" "$TEST_TMP/n$n.log"
  kill "$(eval echo \$UA_$ua)" 2>/dev/null || true
  check "$ua registers at n$n again" answer "${ua}2" "sips:$ua@example.com" "$NET.$n"
}

check "alice registers at n2" answer alice sips:alice@example.com "$N2"
check "bob registers at n3" answer bob sips:bob@example.com "$N3"
check "carol registers at P2 (example.net)" answer carol sips:carol@example.net "$P2_IP"
check "Redis holds alice's binding with n2 as its owner" \
  bash -c "rcli() { redis-cli -h $REDIS_IP -p $REDIS_PORT \"\$@\"; }; rcli --raw hvals example.com:aor:alice@example.com | grep -q '^2:'"

# 1. A caller at n1 calls alice (at n2): n1 -> n2 -> alice's flow.
check "call n1 -> alice@n2 completes" call c1 sips:dave@example.com "$N1" sips:alice@example.com
check "n1 handed the INVITE and the BYE to n2 (to_node=$(to_node 1))" [ "$(to_node 1)" -ge 2 ]
check "n2 authenticated n1 as example.com (mutual TLS between nodes)" \
  grep -Eq "event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}" "$TEST_TMP/n2.log"
check "alice answered" grep -q '<-- INVITE ' "$TEST_TMP/alice.out"

# 2. A caller at n2 calls bob (at n3).
check "call n2 -> bob@n3 completes" call c2 sips:erin@example.com "$N2" sips:bob@example.com
check "n2 handed the INVITE to n3" [ "$(to_node 2)" -ge 1 ]
check "bob answered" grep -q '<-- INVITE ' "$TEST_TMP/bob.out"

# 2b. The callee hangs up: heidi (at n3) sends the BYE down her flow to n3,
#     which hands it to n2, which holds the caller's flow.
check "heidi registers at n3 (she hangs up after 1 s)" answer heidi sips:heidi@example.com "$N3" --hangup 1
"$SIPSCTL" call --as sips:ivan@example.com --proxy "$N2:5061" --ca "$PKI/ca.pem" \
  --to sips:heidi@example.com --hold 5 --timeout 10 >"$TEST_TMP/c2b.out" 2>&1 && rc=0 || rc=$?
check "call n2 -> heidi@n3 ended by heidi's BYE (rc=$rc)" \
  grep -q 'BYE from the callee answered 200' "$TEST_TMP/c2b.out"
check "n3 handed heidi's BYE to n2 (to_node=$(to_node 3))" [ "$(to_node 3)" -ge 1 ]

# 3. Across domains: carol (example.net) calls alice; P2 reaches n1 by SRV,
#    n1 hands it to n2. The BYE comes back through the route set.
check "call carol@example.net -> alice@example.com completes" \
  call c3 sips:carol@example.net "$P2_IP" sips:alice@example.com
check "P2 reached example.com at n1 (SRV priority 10)" \
  grep -Eq "event=tls.peer .*dir=out peer=$N1:5061 .*wanted=example.com found=\{example\.com\}" "$TEST_TMP/p2.log"
check "n1 handed that INVITE and its BYE (from P2, through n1) to n2 too (to_node=$(to_node 1))" [ "$(to_node 1)" -ge 4 ]
# 4. And out: a caller at n3 calls carol at example.net.
check "call n3 -> carol@example.net completes" call c4 sips:frank@example.com "$N3" sips:carol@example.net
check "carol answered" grep -q '<-- INVITE ' "$TEST_TMP/carol.out"

# 5. n3 dies (SIGKILL: no goodbye). The others see its heartbeat stop and
#    drop its flows' bindings; bob's is gone from Redis.
kill -9 "$PID_n3"; wait "$PID_n3" 2>/dev/null || true
t0=$(date +%s%N)
check "a node logs n3 gone with bob's and heidi's bindings removed" \
  bash -c "for _ in \$(seq 100); do grep -Eq 'event=cluster.node_gone node=3 .*bindings_removed=2' '$TEST_TMP/n1.log' '$TEST_TMP/n2.log' && exit 0; sleep 0.1; done; exit 1"
echo "# n3's bindings dropped $(( ($(date +%s%N) - t0) / 1000000 )) ms after its death (node_timeout_ms 1500)"
check "bob's binding is gone from Redis" bash -c "[ \"\$(redis-cli -h $REDIS_IP -p $REDIS_PORT hlen example.com:aor:bob@example.com)\" = 0 ]"
start=$(date +%s%N)
call c5 sips:dave@example.com "$N1" sips:bob@example.com && rc=0 || rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "a call to bob now fails at once (rc=$rc, $took ms) ..." [ "$rc" != 0 ] && [ "$took" -lt 3000 ]
check "... with 404 (not registered), not a timeout" grep -q '<-- SIP/2.0 404' "$TEST_TMP/c5.out"
check "alice (at n2) is still reachable" call c6 sips:dave@example.com "$N1" sips:alice@example.com

# 6. n3 comes back: it cleans what its earlier life left (nothing now), bob
#    registers again, calls reach him.
node_back 3 0 bob
check "call n1 -> bob@n3 completes after the restart" call c7 sips:dave@example.com "$N1" sips:bob@example.com

# 7. n2 killed and restarted at once (within node_timeout_ms, so no other
#    node declares it gone): its own start removes alice's dead flow.
kill -9 "$PID_n2"; wait "$PID_n2" 2>/dev/null || true
node_back 2 1 alice

# 8. Redis dies. REGISTER gets 503 with Retry-After; Redis restarts from its
#    append-only file; the nodes reconnect; calls to alice and bob work
#    without them registering again.
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
"$SIPSCTL" register --as sips:gina@example.com --proxy "$N1:5061" --ca "$PKI/ca.pem" \
  >"$TEST_TMP/reg-down.out" 2>&1 || true
check "REGISTER while Redis is down gets 503" grep -q 'SIP/2.0 503' "$TEST_TMP/reg-down.out"
check "a node logged Redis down" \
  bash -c "for _ in \$(seq 50); do grep -q 'event=location.redis .*state=down' '$TEST_TMP/n1.log' && exit 0; sleep 0.1; done; exit 1"
check "redis-server restarted on its append-only file" start_redis
check "the nodes logged Redis up again" \
  bash -c "for _ in \$(seq 50); do grep -q 'event=location.redis .*state=up' '$TEST_TMP/n1.log' && [ \$(grep -c 'state=up' '$TEST_TMP/n1.log') -ge 2 ] && exit 0; sleep 0.1; done; exit 1"
# A worker whose last try found Redis down waits REDIS_RETRY_MS (500 ms)
# before the next one.
sleep 1
check "call n1 -> alice@n2 after the Redis restart" call c8 sips:dave@example.com "$N1" sips:alice@example.com
check "call n1 -> bob@n3 after the Redis restart" call c9 sips:dave@example.com "$N1" sips:bob@example.com
check "no node was declared gone by the Redis restart" \
  bash -c "[ \$(cat '$TEST_TMP'/n[12]*.log | grep -c 'cluster.node_gone') = 1 ]"
check "REGISTER works again" \
  "$SIPSCTL" register --as sips:gina@example.com --proxy "$N1:5061" --ca "$PKI/ca.pem"

# 9. A node that starts while Redis is down: it starts (503s meanwhile) and
#    removes what its earlier process left before it stores anything, once
#    Redis answers. n3 dies holding bob's flow, Redis goes down, n3 starts.
kill -9 "$PID_n3"; wait "$PID_n3" 2>/dev/null || true
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
mv "$TEST_TMP/n3.log" "$TEST_TMP/n3-second.log"
check "n3 starts while Redis is down" start_sipsd n3 "$TEST_TMP/n3.conf"
check "... and says registrations get 503 until Redis answers" \
  grep -q 'event=location.redis .*state=down reason="no answer at start' "$TEST_TMP/n3.log"
"$SIPSCTL" register --as sips:judy@example.com --proxy "$N3:5061" --ca "$PKI/ca.pem" \
  >"$TEST_TMP/reg-judy-down.out" 2>&1 || true
check "REGISTER at n3 gets 503 meanwhile" grep -q 'SIP/2.0 503' "$TEST_TMP/reg-judy-down.out"
check "redis-server back" start_redis
sleep 1 # REDIS_RETRY_MS
check "REGISTER at n3 works once Redis answers" \
  "$SIPSCTL" register --as sips:judy@example.com --proxy "$N3:5061" --ca "$PKI/ca.pem"
check "n3 first removed bob's binding of its earlier process" \
  grep -Eq 'event=location.redis node=3 op=restart_cleanup bindings_removed=1' "$TEST_TMP/n3.log"
check "bob's dead binding is gone from Redis" \
  bash -c "[ \"\$(redis-cli -h $REDIS_IP -p $REDIS_PORT hlen example.com:aor:bob@example.com)\" = 0 ]"

for n in 1 2 3; do stop_pid "$(eval echo \$PID_n$n)"; done
stop_pid "$PID_p2"
if [ "$FAILED" -ne 0 ]; then
  for f in "$TEST_TMP"/*.out; do echo "== $f"; tail -30 "$f"; done
  for f in "$TEST_TMP"/n*.log "$TEST_TMP"/p2.log; do echo "== $f"; tail -60 "$f"; done
  tail -20 "$TEST_TMP/redis.log"
fi
finish
