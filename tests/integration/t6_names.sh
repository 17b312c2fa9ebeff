#!/usr/bin/env bash
# t6_names.sh: spec T6 on its own (the cases live in lib/names_cases.sh).
NAMES_NET=127.0.59 TCASE=T6 exec bash "$(dirname "$0")/lib/names_cases.sh"
