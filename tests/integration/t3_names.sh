#!/usr/bin/env bash
# t3_names.sh: spec T3 on its own (the cases live in lib/names_cases.sh).
NAMES_NET=127.0.56 TCASE=T3 exec bash "$(dirname "$0")/lib/names_cases.sh"
