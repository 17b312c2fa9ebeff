#!/usr/bin/env bash
# install.sh: `make install` with a DESTDIR lays out the binaries, the man
# pages (which format cleanly), the systemd unit (pointing at the installed
# daemon) and the example configuration.
source "$(dirname "$0")/lib/common.sh"
dest="$TEST_TMP/root"
make -C "$SIPSD_SRC" --no-print-directory install BUILD="$SIPSD_BUILD" DESTDIR="$dest" PREFIX=/usr \
  >"$TEST_TMP/install.log" 2>&1 && rc=0 || rc=$?
check "make install succeeds" [ "$rc" = 0 ]
check "sipsd installed and runs" "$dest/usr/sbin/sipsd" -h
check "sipsctl installed and runs" "$dest/usr/bin/sipsctl" --help
for m in man1/sipsctl.1 man5/sipsd.conf.5 man8/sipsd.8; do
  check "man page $m formats without warnings" \
    bash -c "groff -man -Tutf8 -ww '$dest/usr/share/man/$m' 2>&1 >/dev/null | grep -q . && exit 1 || exit 0"
done
check "systemd unit is Type=notify and starts the installed daemon" \
  grep -q '^ExecStart=/usr/sbin/sipsd -c /etc/sipsd/sipsd.conf' "$dest/usr/lib/systemd/system/sipsd.service"
check "the example configuration is installed" \
  grep -q '^\[listen tls' "$dest/usr/share/doc/sipsd/sipsd.conf.example"
finish
