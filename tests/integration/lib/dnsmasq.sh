# dnsmasq.sh: run a real dnsmasq on a loopback address:port for integration
# tests. Source it after common.sh (it uses PIDS and TEST_TMP from there).
#
# A records file is a dnsmasq configuration file holding only records, e.g.
#   local=/test/          # answer NXDOMAIN/NODATA under .test, never forward
#   local-ttl=60          # TTL of these records (dnsmasq's default is 0)
#   naptr-record=example.test,10,50,"s","SIPS+D2T","","_sips._tcp.example.test"
#   srv-host=_sips._tcp.example.test,sip1.example.test,5061,10,20
#   host-record=sip1.example.test,127.0.0.10,::1
#   address=/wild.test/127.0.0.11
#   cname=alias.test,sip1.example.test
# (srv-host is name,target,port,priority,weight.) Queries are logged to
# $TEST_TMP/NAME.log.

# start_dnsmasq RECORDS ADDR:PORT [NAME]: start dnsmasq answering from
# RECORDS only, on ADDR:PORT ("[v6]:PORT" for IPv6); record its PID in PIDS
# (stopped on exit by common.sh) and in DNSMASQ_PID, set DNSMASQ_ADDR
# (ADDR:PORT) and DNSMASQ_LOG; wait up to 5 s until it answers a query.
# Returns 1 (log printed) when it did not come up, e.g. the port is taken.
start_dnsmasq() {
  local records=$1 hostport=$2 name=${3:-dnsmasq}
  local port=${hostport##*:} addr=${hostport%:*}
  addr=${addr#[}; addr=${addr%]}
  local log="$TEST_TMP/$name.log"
  dnsmasq --no-daemon --no-resolv --no-hosts --no-poll \
    --port="$port" --listen-address="$addr" --bind-interfaces \
    --conf-file="$records" --pid-file= --cache-size=0 \
    --log-queries --log-facility=- >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  DNSMASQ_PID=$pid
  DNSMASQ_ADDR=$hostport
  DNSMASQ_LOG=$log
  # Ready = this process logged its start (after binding), answers, and
  # is still alive (another server on the same port would answer too).
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    if grep -q 'started, version' "$log" && dnsmasq_probe "$addr" "$port" &&
       kill -0 "$pid" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "dnsmasq $name on $hostport did not start:"; cat "$log"
  stop_pid "$pid"
  return 1
}

# start_dnsmasq_any RECORDS ADDR [NAME]: as start_dnsmasq on a random port
# above 5353 (for tests running in parallel), trying up to 10 ports.
start_dnsmasq_any() {
  local records=$1 addr=$2 name=${3:-dnsmasq} port
  for _ in $(seq 10); do
    port=$((5354 + RANDOM % 30000))
    if [[ $addr == *:* ]]; then
      start_dnsmasq "$records" "[$addr]:$port" "$name" >/dev/null && return 0
    else
      start_dnsmasq "$records" "$addr:$port" "$name" >/dev/null && return 0
    fi
  done
  echo "dnsmasq $name: no free port on $addr"; cat "$TEST_TMP/$name.log"
  return 1
}

# dnsmasq_probe ADDR PORT: one DNS query (A of probe.invalid) over UDP;
# succeeds on any answer (NXDOMAIN or REFUSED included) within 0.2 s.
dnsmasq_probe() {
  python3 - "$1" "$2" <<'PY'
import socket, struct, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
q = struct.pack(">HHHHHH", 0x5353, 0x0100, 1, 0, 0, 0)
q += b"\x05probe\x07invalid\x00" + struct.pack(">HH", 1, 1)
try:
    s.sendto(q, (addr, port))
    sys.exit(0 if s.recv(512)[:2] == b"\x53\x53" else 1)
except OSError:
    sys.exit(1)
PY
}
