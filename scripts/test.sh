#!/usr/bin/env bash
# Sets up the machine (as root), builds sctpt three ways and runs every test:
#   0. layer rules: the include checker's own tests, then the checker on src/
#   1. release build with -Werror, cmocka unit tests, integration tests, and
#      the README's demo (scripts/demo.sh) on that build
#   2. AddressSanitizer (with LeakSanitizer) + UndefinedBehaviorSanitizer
#      build with fault injection, unit and integration tests under it
#   3. clang libFuzzer build, each fuzz harness for a short run from its
#      committed seed corpus (tests/fuzz/corpus/NAME)
#   4. the Debian package (scripts/deb-test.sh): built from a temporary copy
#      of the tree, installed, the real-tor bridge test run against
#      /usr/bin/sctpt from it, purged again
# The last line is "N passed, N failed"; the exit status is 0 only if
# nothing failed.  SCTPT_FUZZ_SECONDS (default 20) sets the fuzz time per
# harness and SCTPT_FUZZ_SEED (default 1) libFuzzer's seed: the gate is
# reproducible, and long random-seed runs are scripts/fuzz-soak.sh's job.
# SCTPT_SKIP_ASAN=1 skips step 2 for a quick local run, SCTPT_SKIP_DEB=1
# step 4.
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

# The include checker's unit tests (each counts), then the checker itself.
run_layer_rules() {
	local out rc ok bad
	out=$(python3 -m unittest -v tests/checker/test_check_layers.py 2>&1)
	rc=$?
	ok=$(echo "$out" | grep -cE ' \.\.\. ok$')
	bad=$(echo "$out" | grep -cE ' \.\.\. (FAIL|ERROR)$')
	echo "$out" | grep -E ' \.\.\. (ok|FAIL|ERROR)$' | sed -E 's/ \(.*\)//; s|^|  [checker] |'
	pass layer-checker-tests "$ok"
	if [ "$bad" -gt 0 ]; then
		fail "layer checker tests ($bad)" "$bad"
		echo "$out" | tail -30
	elif [ $rc -ne 0 ]; then
		fail "layer checker tests (exit $rc)"
		echo "$out" | tail -30
	fi
	if python3 tools/check_layers.py; then
		pass layer-rules
	else
		fail "layer rules (src/*/.may_include, tools/check_layers.py)"
	fi
}

# The README's demo must finish by itself; timeout also ends whatever it
# started (it signals the demo's whole process group).
run_demo() {
	local t0 t1 rc
	t0=$(date +%s)
	SCTPT_DEMO_BUILD=build timeout -k 10 180 ./scripts/demo.sh >"$LOGDIR/demo.log" 2>&1
	rc=$?
	t1=$(date +%s)
	if [ $rc -eq 0 ] && grep -q '^Demo finished' "$LOGDIR/demo.log"; then
		echo "  demo finished in $((t1 - t0)) s ($(grep -E 'of 10 identical' "$LOGDIR/demo.log" | sed 's/^ *//'))"
		pass demo
	else
		fail "demo (exit $rc after $((t1 - t0)) s, log $LOGDIR/demo.log)"
		tail -30 "$LOGDIR/demo.log"
	fi
}

# Each harness runs from its committed seed corpus.  libFuzzer writes new
# inputs only to the first directory, so that is a scratch one under
# $LOGDIR and the committed corpus stays as it is.
run_fuzz() {
	local names=() name bin corpus scratch
	for f in tests/fuzz/fuzz_*.c tests/fuzz/corpus/*/; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .c)
		names+=("${name#fuzz_}")
	done
	for name in $(printf '%s\n' "${names[@]}" | sort -u); do
		bin=
		for d in build-fuzz/tests/fuzz build-fuzz; do
			if [ -f "$d/fuzz_$name" ] && [ -x "$d/fuzz_$name" ]; then bin=$d/fuzz_$name; break; fi
		done
		corpus=tests/fuzz/corpus/$name
		if [ -z "$bin" ]; then
			fail "fuzz_$name (not built: add it to tests/fuzz/meson.build)"
			continue
		fi
		if [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
			fail "fuzz_$name (no seed corpus in $corpus: see tests/fuzz/README.md)"
			continue
		fi
		scratch="$LOGDIR/corpus-fuzz_$name"
		rm -rf "$scratch"
		mkdir -p "$scratch"
		if "$bin" -seed="${SCTPT_FUZZ_SEED:-1}" -max_total_time="${SCTPT_FUZZ_SECONDS:-20}" -print_final_stats=1 \
			-artifact_prefix="$LOGDIR/fuzz_$name-" "$scratch" "$corpus" \
			>"$LOGDIR/fuzz_$name.log" 2>&1; then
			echo "  fuzz_$name: $(ls "$corpus" | wc -l) seeds, $(grep -E 'stat::number_of_executed_units' "$LOGDIR/fuzz_$name.log" | awk '{print $2}') runs, no crash"
			pass "fuzz_$name"
		else
			fail "fuzz_$name"
			tail -30 "$LOGDIR/fuzz_$name.log"
		fi
	done
}

# The .deb step counts as one test; its script purges the package even when
# it fails or is stopped (timeout signals its whole process group).
run_deb() {
	local t0 t1 rc
	t0=$(date +%s)
	timeout -k 10 900 ./scripts/deb-test.sh >"$LOGDIR/deb-test.log" 2>&1
	rc=$?
	t1=$(date +%s)
	grep -E '^deb-test: (built|build |purged)|^  (PASS|FAIL)' "$LOGDIR/deb-test.log" | sed 's/^/  /'
	if [ $rc -eq 0 ] && grep -qx 'deb-test: PASS' "$LOGDIR/deb-test.log"; then
		echo "  deb package test passed in $((t1 - t0)) s"
		pass deb-package
	else
		fail "deb package (exit $rc after $((t1 - t0)) s, log $LOGDIR/deb-test.log)"
		tail -30 "$LOGDIR/deb-test.log"
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

note "layer rules"
run_layer_rules

note "build with -Werror"
if build build -Dwerror=true -Dbuildtype=debugoptimized; then
	pass build-werror
	note "unit tests"
	run_unit build unit
	note "integration tests"
	run_integration "$ROOT/build/sctpt" release
	note "demo (scripts/demo.sh on the release build)"
	run_demo
else
	fail build-werror
fi

if [ "${SCTPT_SKIP_ASAN:-0}" != 1 ]; then
	note "build with AddressSanitizer + UndefinedBehaviorSanitizer (+ fault injection)"
	if CC=gcc build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug -Dwerror=true -Dfault_injection=true; then
		pass build-asan
		# gcc's ASan includes LeakSanitizer: a leak at exit is a failure
		# (tests/integration/lib.py looks for "LeakSanitizer" in the logs).
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
		# Leaks inside libraries only (never sctpt's own code) go here.
		if [ -f tests/lsan.supp ]; then
			export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
		fi
		note "unit tests under ASan/UBSan"
		run_unit build-asan unit-asan
		note "integration tests under ASan/UBSan"
		# The fault-injection tests run only against a -Dfault_injection build.
		# The chain's private Tor network waits on tor's voting schedule (22-87 s under
		# ASan on a loaded machine); the release pass runs it.
		export SCTPT_FAULT_BUILD=1
		run_integration "$ROOT/build-asan/sctpt" asan --skip 1gib --skip chain_tor_private_network
		unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS SCTPT_FAULT_BUILD
	else
		fail build-asan
	fi
fi

if [ "${SCTPT_SKIP_DEB:-0}" != 1 ]; then
	note "Debian package (build, install, real-tor bridge test on /usr/bin/sctpt, purge)"
	run_deb
fi

note "fuzz (libFuzzer, ${SCTPT_FUZZ_SECONDS:-20} s per harness)"
if CC=clang build build-fuzz -Dfuzz=true -Dtests=disabled -Dbuildtype=debug; then
	pass build-fuzz
	run_fuzz
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
