#!/usr/bin/env bash
# t4_names.sh: spec T4 on its own (the cases live in lib/names_cases.sh).
NAMES_NET=127.0.57 TCASE=T4 exec bash "$(dirname "$0")/lib/names_cases.sh"
