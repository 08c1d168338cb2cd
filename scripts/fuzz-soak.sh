#!/usr/bin/env bash
# Long fuzzing with fresh random seeds, outside the test command's gate.
#
#   scripts/fuzz-soak.sh [-t SECONDS] [-j JOBS] [HARNESS...]
#
# Builds the libFuzzer harnesses (build-fuzz/, clang), then runs each named
# harness (default: all of them) for SECONDS (default 600) from a scratch
# copy of its committed corpus, JOBS harnesses at a time (default: the
# number of CPUs).  The committed corpus is never written.  Crashes land in
# build-logs/soak/ as NAME-crash-* (or -timeout-, -oom-, -leak-); the script prints every one with the
# command that replays it and exits 1 if there was any.  New interesting
# inputs stay in build-logs/soak/NAME/ for `-merge=1` (tests/fuzz/README.md).
set -u
cd "$(dirname "$0")/.."
secs=600
jobs=$(nproc 2>/dev/null || echo 2)
while getopts "t:j:h" o; do
	case $o in
	t) secs=$OPTARG ;;
	j) jobs=$OPTARG ;;
	*) sed -n '2,12p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
case $secs$jobs in
*[!0-9]*) echo "fuzz-soak: -t and -j take whole numbers" >&2; exit 2 ;;
esac
[ "$jobs" -ge 1 ] || jobs=1

if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled -Dbuildtype=debug >/dev/null || exit 1
fi
ninja -C build-fuzz >/dev/null || exit 1

out=build-logs/soak
mkdir -p "$out"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in tests/fuzz/corpus/*/; do names+=("$(basename "$d")"); done
fi

soak_one() {
	local name=$1 bin=build-fuzz/tests/fuzz/fuzz_$1 seed rc
	if [ ! -x "$bin" ]; then
		echo "fuzz_$name: not built" >&2
		return 1
	fi
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	rm -rf "${out:?}/$name"
	cp -r "tests/fuzz/corpus/$name" "$out/$name"
	# -timeout: an input that runs 10 s is a hang, kept as timeout-*.
	timeout $((secs + 120)) "$bin" -seed="$seed" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" "$out/$name" >"$out/$name.log" 2>&1
	rc=$?
	echo "fuzz_$name: seed $seed, $(awk '/number_of_executed_units/ {print $2}' "$out/$name.log") runs, exit $rc"
}

running=0
for name in "${names[@]}"; do
	soak_one "$name" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

found=0
for f in "$out"/*-crash-* "$out"/*-timeout-* "$out"/*-oom-* "$out"/*-leak-*; do
	[ -e "$f" ] || continue
	found=1
	name=${f#"$out"/}
	name=${name%%-*}
	echo "FOUND: $f (replay: build-fuzz/tests/fuzz/fuzz_$name $f)"
done
exit $found
