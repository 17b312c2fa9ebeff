# trapezoid.sh: the SIP trapezoid on loopback for integration tests and the
# demo (sourced after common.sh and dnsmasq.sh). P1 serves example.com on
# $P1_IP, P2 serves example.net on $P2_IP; dnsmasq answers NAPTR/SRV/A for
# both. Certificates come from tests/certs/make-matrix.sh.

P1_IP=${P1_IP:-127.0.40.1}
P2_IP=${P2_IP:-127.0.40.2}
DNS_IP=${DNS_IP:-127.0.40.53}

# trapezoid_dns FILE [EXTRA RECORD LINES...]: write the records.
trapezoid_dns() {
  local f=$1; shift
  {
    echo 'local=/com/'
    echo 'local=/net/'
    echo 'local=/org/'
    echo 'local-ttl=60'
    echo 'naptr-record=example.com,10,50,"s","SIPS+D2T","","_sips._tcp.example.com"'
    echo "srv-host=_sips._tcp.example.com,p1.example.com,5061,10,10"
    echo "host-record=p1.example.com,$P1_IP"
    echo 'naptr-record=example.net,10,50,"s","SIPS+D2T","","_sips._tcp.example.net"'
    echo "srv-host=_sips._tcp.example.net,p2.example.net,5061,10,10"
    echo "host-record=p2.example.net,$P2_IP"
    for l in "$@"; do echo "$l"; done
  } >"$f"
}

# trapezoid_conf FILE DOMAIN CERT KEY IP [EXTRA LINES...]: a proxy's config.
trapezoid_conf() {
  local f=$1 domain=$2 cert=$3 key=$4 ip=$5; shift 5
  {
    echo "workers = 2"
    echo "[tls]"
    echo "ca_file = $PKI/ca.pem"
    echo "[dns]"
    echo "servers = $DNS_ADDR"
    echo "timeout_ms = 500"
    echo "[domain $domain]"
    echo "cert = $cert"
    echo "key = $key"
    echo "[listen tls $ip:5061]"
    for l in "$@"; do echo "$l"; done
  } >"$f"
}
