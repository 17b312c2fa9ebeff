#!/usr/bin/env bash
# address_plan.sh: no two integration tests use the same loopback /24.
# CTest runs them in parallel (ctest -j), and each binds fixed addresses:
# two tests on one /24 refuse each other's sipsd ("address already in use")
# or answer each other's packets. Every 127.0.N.x literal outside comments,
# and every NET=/NAMES_NET= prefix, counts; 127.0.0.x (ephemeral clients)
# does not.
source "$(dirname "$0")/lib/common.sh"
dir="$SIPSD_SRC/tests/integration"
declare -A owner
dups=0
for f in "$dir"/*.sh; do
  name=$(basename "$f")
  for p in $(sed -E 's/(^|[[:space:]])#.*$//' "$f" | grep -oE '127\.0\.[0-9]+' | sort -u); do
    [ "$p" = 127.0.0 ] && continue
    if [ -n "${owner[$p]:-}" ]; then
      echo "# $p used by ${owner[$p]} and $name"
      dups=$((dups + 1))
    else
      owner[$p]=$name
    fi
  done
done
check "every loopback /24 belongs to one test (${#owner[@]} in use)" [ "$dups" = 0 ]
finish
