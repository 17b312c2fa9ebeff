#!/usr/bin/env bash
# dns_rfc3263.sh: RFC 3263 resolution against a real dnsmasq: NAPTR order,
# SRV priority and weight, sips filtering, NAPTR->SRV->A fallbacks, CNAME,
# NXDOMAIN, a silent server, the TTL cache with the server stopped. The
# checks live in test_dns (its "live" group, run with SIPSD_DNS_LIVE set).
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
DRIVER="$SIPSD_BUILD/test_dns"
IP=127.0.53.1
if [ ! -x "$DRIVER" ]; then echo "missing $DRIVER"; exit 1; fi

cat >"$TEST_TMP/main.conf" <<'CONF'
local=/test/
local-ttl=60
# NAPTR: listed out of order; SCTP is not ours; expected TLS(10/50),
# TCP(10/60), UDP(20/10); sips: uses SIPS+D2T only.
naptr-record=naptr.test,20,10,"s","SIP+D2U","","_sip._udp.naptr.test"
naptr-record=naptr.test,10,60,"s","SIP+D2T","","_sip._tcp.naptr.test"
naptr-record=naptr.test,5,10,"s","SIP+D2S","","_sip._sctp.naptr.test"
naptr-record=naptr.test,10,50,"s","SIPS+D2T","","_sips._tcp.naptr.test"
srv-host=_sips._tcp.naptr.test,tls1.naptr.test,5061,10,10
srv-host=_sip._tcp.naptr.test,tcp1.naptr.test,5060,10,10
srv-host=_sip._udp.naptr.test,udp1.naptr.test,5060,10,10
srv-host=_sip._sctp.naptr.test,sctp1.naptr.test,5060,10,10
host-record=tls1.naptr.test,127.0.10.1
host-record=tcp1.naptr.test,127.0.10.2
host-record=udp1.naptr.test,127.0.10.3
host-record=sctp1.naptr.test,127.0.10.4
# The server prefers UDP; sip_prefer_tls turns it round.
naptr-record=udpfirst.test,10,10,"s","SIP+D2U","","_sip._udp.udpfirst.test"
naptr-record=udpfirst.test,20,10,"s","SIPS+D2T","","_sips._tcp.udpfirst.test"
srv-host=_sip._udp.udpfirst.test,u.udpfirst.test,5070,1,1
srv-host=_sips._tcp.udpfirst.test,t.udpfirst.test,5071,1,1
host-record=u.udpfirst.test,127.0.11.1
host-record=t.udpfirst.test,127.0.11.2
# SRV priority (no NAPTR).
host-record=prio.test,127.0.12.1
srv-host=_sip._udp.prio.test,p20.prio.test,5060,20,0
srv-host=_sip._udp.prio.test,p10.prio.test,5060,10,0
srv-host=_sip._udp.prio.test,p30.prio.test,5060,30,0
host-record=p10.prio.test,127.0.12.10
host-record=p20.prio.test,127.0.12.20
host-record=p30.prio.test,127.0.12.30
# SRV weight 0 vs 10 in one priority.
host-record=weight.test,127.0.13.99
srv-host=_sip._udp.weight.test,w0.weight.test,5060,10,0
srv-host=_sip._udp.weight.test,w10.weight.test,5060,10,10
host-record=w0.weight.test,127.0.13.1
host-record=w10.weight.test,127.0.13.2
# Only SIP NAPTR and _sip SRV: a sips: URI must not use them.
naptr-record=sipnaptr.test,10,10,"s","SIP+D2U","","_sip._udp.sipnaptr.test"
srv-host=_sip._udp.sipnaptr.test,u.sipnaptr.test,5060,10,10
host-record=u.sipnaptr.test,127.0.14.2
host-record=sipnaptr.test,127.0.14.1
# No NAPTR: SRV per transport.
host-record=srvonly.test,127.0.15.1
srv-host=_sips._tcp.srvonly.test,t.srvonly.test,5061,10,10
srv-host=_sip._udp.srvonly.test,u.srvonly.test,5060,10,10
host-record=t.srvonly.test,127.0.15.2
host-record=u.srvonly.test,127.0.15.3
# Neither NAPTR nor SRV: addresses with the default port.
host-record=aonly.test,127.0.16.1,::1
cname=alias.test,aonly.test
CONF

cat >"$TEST_TMP/cache.conf" <<'CONF'
local=/test/
local-ttl=60
naptr-record=cache.test,10,10,"s","SIPS+D2T","","_sips._tcp.cache.test"
srv-host=_sips._tcp.cache.test,t.cache.test,5061,10,10
host-record=t.cache.test,127.0.17.1
host-record=cache.test,127.0.17.99
CONF

start_dnsmasq_any "$TEST_TMP/main.conf" "$IP" dnsmasq-main || exit 1
MAIN=$DNSMASQ_ADDR
start_dnsmasq_any "$TEST_TMP/cache.conf" "$IP" dnsmasq-cache || exit 1
CACHE=$DNSMASQ_ADDR CACHE_PID=$DNSMASQ_PID
echo "# dnsmasq main=$MAIN cache=$CACHE (pid $CACHE_PID)"

check "dnsmasq answers (probe)" dnsmasq_probe "$IP" "${MAIN##*:}"
out=$(SIPSD_DNS_LIVE=$MAIN SIPSD_DNS_LIVE_B=$CACHE SIPSD_DNS_LIVE_B_PID=$CACHE_PID \
      timeout 120 "$DRIVER" 2>&1) && rc=0 || rc=$?
echo "$out"
check "live RFC 3263 resolutions against dnsmasq (test_dns live group)" [ "$rc" = 0 ]
check "the cached resolution sent nothing: cache.test asked once per type" \
  [ "$(grep -c 'query\[NAPTR\] cache.test' "$TEST_TMP/dnsmasq-cache.log")" = 1 ]
check "the cache dnsmasq was stopped by the test" bash -c "! kill -0 $CACHE_PID 2>/dev/null"
check "sips:sipnaptr.test fell back to _sips._tcp SRV (the SIP+D2U NAPTR ignored)" \
  grep -q 'query\[SRV\] _sips._tcp.sipnaptr.test' "$TEST_TMP/dnsmasq-main.log"
finish
