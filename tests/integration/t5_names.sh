#!/usr/bin/env bash
# t5_names.sh: spec T5 on its own (the cases live in lib/names_cases.sh).
NAMES_NET=127.0.58 TCASE=T5 exec bash "$(dirname "$0")/lib/names_cases.sh"
