#!/usr/bin/env bash
# install-deps.sh: install the Debian packages sipsd needs that are missing.
# Usage: scripts/install-deps.sh [build|test|demo|bench|fuzz|valgrind]...  (default: build test)
# Runs apt-get only when something is missing; needs root for that.
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build pkg-config libssl-dev libc-ares-dev libcmocka-dev libhiredis-dev openssl)
test_pkgs=(dnsmasq-base sip-tester python3 baresip-core kamailio kamailio-tls-modules testssl.sh redis-server)
demo_pkgs=(dnsmasq-base openssl python3)
bench_pkgs=(libosip2-dev)
fuzz_pkgs=(clang libclang-rt-14-dev)
valgrind_pkgs=(valgrind)

want=()
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build test)
for g in "${groups[@]}"; do
  case "$g" in
    build) want+=("${build_pkgs[@]}") ;;
    test) want+=("${test_pkgs[@]}") ;;
    demo) want+=("${demo_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    fuzz) want+=("${fuzz_pkgs[@]}") ;;
    valgrind) want+=("${valgrind_pkgs[@]}") ;;
    *) echo "install-deps: unknown group '$g'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

# Deduplicate while keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "install-deps: installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: missing packages and not root: ${missing[*]}" >&2; exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
