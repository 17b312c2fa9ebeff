#!/usr/bin/env bash
# run-fuzzers.sh: runs every libFuzzer target of a SIPSD_FUZZ=ON build for a
# fixed time each, on a scratch copy of its seed corpus, and fails when a
# target crashes (or leaks, or times out on an input).
#
#   scripts/run-fuzzers.sh BUILD_DIR SECONDS [TARGET...]
#
# BUILD_DIR  a build configured with CC=clang -DSIPSD_FUZZ=ON
# SECONDS    -max_total_time for each target
# TARGET     optional names (fuzz_parse, parse, ...) to run only those
#
# The committed corpus (fuzz/corpus/NAME) is copied to a temporary work
# directory, so new inputs found by a run never land in git by accident.
# Set FUZZ_KEEP=1 to keep the work directories (to merge new inputs on
# purpose: fuzz_NAME -merge=1 fuzz/corpus/NAME WORK_DIR). Extra libFuzzer
# flags can be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=4 -workers=4").
# Crash inputs are kept in ARTIFACT_DIR (default BUILD_DIR/fuzz-artifacts).
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
build=$1
seconds=$2
shift 2
case $seconds in
'' | *[!0-9]*) usage ;;
esac
[ "$seconds" -gt 0 ] || usage

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd) || {
	echo "run-fuzzers: no build directory $build" >&2
	exit 2
}
artifacts=${ARTIFACT_DIR:-$build/fuzz-artifacts}
mkdir -p "$artifacts"

# The targets: executables fuzz_NAME (not the gcc replay programs).
targets=()
for exe in "$build"/fuzz_*; do
	if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then
		continue
	fi
	name=$(basename "$exe")
	case $name in *_replay) continue ;; esac
	if [ $# -gt 0 ]; then
		want=0
		for t in "$@"; do
			[ "$t" = "$name" ] || [ "fuzz_$t" = "$name" ] && want=1
		done
		[ $want = 1 ] || continue
	fi
	targets+=("$exe")
done
if [ ${#targets[@]} -eq 0 ]; then
	if [ $# -gt 0 ]; then
		echo "run-fuzzers: no fuzz target named $* in $build" >&2
	else
		echo "run-fuzzers: no fuzz_* targets in $build (configure with CC=clang -DSIPSD_FUZZ=ON)" >&2
	fi
	exit 2
fi

# libFuzzer only sees coverage of code built with -fsanitize=fuzzer(-no-link);
# warn when the core library was not instrumented (only the target was).
if [ -f "$build/CMakeCache.txt" ] && ! grep -q 'fuzzer-no-link' "$build/CMakeCache.txt" &&
	! grep -rqs 'fuzzer-no-link' "$build/CMakeFiles/sipscore.dir/flags.make" "$build/build.ninja"; then
	echo "run-fuzzers: warning: libsipscore is not built with -fsanitize=fuzzer-no-link;" >&2
	echo "run-fuzzers: coverage feedback covers only the fuzz_*.c files (see docs/testing.md)" >&2
fi

# The fuzz targets are built with recoverable UBSan: make every report fatal
# so undefined behaviour counts as a crash, not a line in a log.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

work_root=$(mktemp -d "${TMPDIR:-/tmp}/sipsd-fuzz.XXXXXX")
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	if [ "${FUZZ_KEEP:-0}" = 1 ]; then
		echo "run-fuzzers: work directories kept in $work_root"
	else
		rm -rf "$work_root"
	fi
}
trap cleanup EXIT

failed=0
summary=()
for exe in "${targets[@]}"; do
	name=$(basename "$exe")
	corpus_name=${name#fuzz_}
	seed="$src/fuzz/corpus/$corpus_name"
	work="$work_root/$corpus_name"
	mkdir -p "$work"
	seeds=0
	if [ -d "$seed" ]; then
		cp -R "$seed"/. "$work"/
		seeds=$(find "$work" -type f | wc -l)
	else
		echo "run-fuzzers: $name: no seed corpus at $seed, starting empty" >&2
	fi
	log="$work_root/$name.log"
	touch "$log.start"
	echo "== $name: ${seconds}s, $seeds seed inputs"
	set +e
	# shellcheck disable=SC2086
	"$exe" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$artifacts/$name-" ${FUZZ_FLAGS:-} "$work" >"$log" 2>&1
	rc=$?
	set -e
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
	corpus_now=$(find "$work" -type f | wc -l)
	line=$(printf '%-12s %12s execs %8s/s  cov %6s  corpus %5s -> %-5s' "$name" "${execs:-?}" \
		"${speed:-?}" "${cov:-?}" "$seeds" "$corpus_now")
	if [ $rc -ne 0 ]; then
		failed=1
		line="$line  FAILED (exit $rc)"
		echo "run-fuzzers: $name failed (exit $rc); last lines of its log:" >&2
		tail -n 40 "$log" >&2
		find "$artifacts" -maxdepth 1 -name "$name-*" -newer "$log.start" \
			-exec echo "run-fuzzers: artifact" {} \; >&2
	else
		line="$line  ok"
	fi
	echo "$line"
	summary+=("$line")
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit $failed
