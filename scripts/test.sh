#!/usr/bin/env bash
# Sets up the machine (as root), builds sctpt three ways and runs every test:
#   1. release build with -Werror, cmocka unit tests, integration tests
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, unit and
#      integration tests under it
#   3. clang libFuzzer build, each fuzz harness for a short run
# The last line is "N passed, N failed"; the exit status is 0 only if
# nothing failed.  SCTPT_FUZZ_SECONDS (default 20) sets the fuzz time per
# harness; SCTPT_SKIP_ASAN=1 skips step 2 for a quick local run.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGDIR=${SCTPT_TEST_LOGS:-$ROOT/build-logs}
mkdir -p "$LOGDIR"
PASSED=0
FAILED=0
FAILS=()

note() { printf '\n=== %s\n' "$*"; }
pass() { PASSED=$((PASSED + ${2:-1})); }
fail() { FAILED=$((FAILED + ${2:-1})); FAILS+=("$1"); echo "FAIL: $1"; }

# Run a cmocka binary and count its individual tests.
run_cmocka() {
	local name=$1 bin=$2 out
	out=$("$bin" 2>&1)
	local rc=$?
	echo "$out" | grep -E '^\[ +(OK|FAILED) +\]' | sed "s|^|  [$name] |"
	local ok bad
	ok=$(echo "$out" | grep -cE '^\[ +OK +\]')
	bad=$(echo "$out" | grep -cE '^\[ +FAILED +\]')
	pass "$name" "$ok"
	if [ "$bad" -gt 0 ]; then
		fail "$name ($bad cmocka tests)" "$bad"
	elif [ $rc -ne 0 ]; then
		fail "$name (exit $rc)"
		echo "$out" | tail -20
	fi
}

run_unit() {
	local dir=$1 label=$2
	for t in "$dir"/tests/unit/test_* "$dir"/src/*/test_* "$dir"/src/*/*/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		run_cmocka "$label/$(basename "$t")" "$t"
	done
}

# Run the integration suite and add its counts.
run_integration() {
	local bin=$1 label=$2; shift 2
	local out="$LOGDIR/integration-$label.txt"
	SCTPT_BIN="$bin" python3 tests/integration/run.py "$@" 2>&1 | tee "$out"
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ -z "$line" ]; then
		fail "integration/$label (no summary line)"
		return
	fi
	local p f
	p=$(echo "$line" | awk '{print $1}')
	f=$(echo "$line" | awk '{print $3}')
	pass "integration/$label" "$p"
	if [ "$f" -gt 0 ]; then
		while read -r l; do FAILS+=("integration/$label: $l"); done \
			< <(grep -E '^FAIL ' "$out" | cut -c1-200)
		FAILED=$((FAILED + f))
	fi
}

build() {
	local dir=$1; shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >"$LOGDIR/setup-$(basename "$dir").log" 2>&1
	else
		meson setup "$dir" "$@" >"$LOGDIR/setup-$(basename "$dir").log" 2>&1
	fi || { cat "$LOGDIR/setup-$(basename "$dir").log"; return 1; }
	ninja -C "$dir" >"$LOGDIR/ninja-$(basename "$dir").log" 2>&1 ||
		{ tail -40 "$LOGDIR/ninja-$(basename "$dir").log"; return 1; }
}

note "setup"
if ./scripts/setup.sh; then pass setup; else fail setup; echo "$PASSED passed, $FAILED failed"; exit 1; fi

note "build with -Werror"
if build build -Dwerror=true -Dbuildtype=debugoptimized; then
	pass build-werror
	note "unit tests"
	run_unit build unit
	note "integration tests"
	run_integration "$ROOT/build/sctpt" release
else
	fail build-werror
fi

if [ "${SCTPT_SKIP_ASAN:-0}" != 1 ]; then
	note "build with AddressSanitizer + UndefinedBehaviorSanitizer"
	if CC=gcc build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug -Dwerror=true; then
		pass build-asan
		export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
		note "unit tests under ASan/UBSan"
		run_unit build-asan unit-asan
		note "integration tests under ASan/UBSan"
		run_integration "$ROOT/build-asan/sctpt" asan --skip 1gib
		unset ASAN_OPTIONS UBSAN_OPTIONS
	else
		fail build-asan
	fi
fi

note "fuzz (libFuzzer, ${SCTPT_FUZZ_SECONDS:-20} s per harness)"
if CC=clang build build-fuzz -Dfuzz=true -Dtests=disabled -Dbuildtype=debug; then
	pass build-fuzz
	for f in build-fuzz/fuzz_*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		name=$(basename "$f")
		corpus="$LOGDIR/corpus-$name"
		mkdir -p "$corpus"
		if "$f" -max_total_time="${SCTPT_FUZZ_SECONDS:-20}" -print_final_stats=1 \
			"$corpus" >"$LOGDIR/$name.log" 2>&1; then
			echo "  $name: $(grep -E 'stat::number_of_executed_units' "$LOGDIR/$name.log" | awk '{print $2}') runs, no crash"
			pass "$name"
		else
			fail "$name"
			tail -30 "$LOGDIR/$name.log"
		fi
	done
else
	fail build-fuzz
fi

if [ ${#FAILS[@]} -gt 0 ]; then
	note "failures"
	printf '  %s\n' "${FAILS[@]}"
fi
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
