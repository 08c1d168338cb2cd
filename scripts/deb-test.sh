#!/usr/bin/env bash
# Builds the Debian package from a temporary copy of this tree (the checkout
# stays as it is; dh builds out of tree in obj-*), installs it, runs the
# real-tor bridge test against /usr/bin/sctpt from the package, checks what
# the package installed, and purges it again, whatever happened (trap).
#
#   scripts/deb-test.sh              as root; last line "deb-test: PASS" or "FAIL"
#   SCTPT_DEB_KEEP=DIR               also copy the built .deb files to DIR
#
# Refuses to run if an sctpt package is already installed (it would be
# replaced and then purged), and holds a lock so that two runs on one
# machine do not install over each other.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PKG=sctpt
TESTS=(test_tor_bridge_client)

say() { printf 'deb-test: %s\n' "$*"; }
die() { say "$*"; say FAIL; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (dpkg -i)"
for t in dpkg-buildpackage dh fakeroot; do
	command -v "$t" >/dev/null || die "$t missing: run scripts/setup.sh"
done

exec 9>/run/lock/sctpt-deb-test.lock || die "cannot open the lock file"
flock -w 900 9 || die "another deb-test held the lock for 15 minutes"

if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'installed'; then
	die "package $PKG is already installed here; not replacing it (dpkg --purge $PKG first)"
fi

TMP=$(mktemp -d /tmp/sctpt-deb.XXXXXX) || die "mktemp"
installed=0
cleanup() {
	if [ "$installed" = 1 ]; then
		if dpkg --purge "$PKG" >"$TMP/purge.log" 2>&1; then
			say "purged $PKG"
		else
			say "dpkg --purge $PKG failed:"; tail -20 "$TMP/purge.log"
		fi
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
# The tree as it is (uncommitted changes included), without build output.
mkdir "$TMP/src"
tar -C "$ROOT" -cf - --exclude-vcs --exclude='./build*' --exclude='./obj-*' \
	--exclude='./.cache' --exclude='__pycache__' --exclude='./tests/fuzz/corpus-*' \
	--exclude='./debian/.debhelper' --exclude='./debian/sctpt' . |
	tar -C "$TMP/src" -xf - || die "copying the tree failed"

say "building the package (dpkg-buildpackage -b -us -uc) in $TMP/src"
if ! (cd "$TMP/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	nice -n 10 dpkg-buildpackage -b -us -uc) >"$TMP/build.log" 2>&1; then
	tail -40 "$TMP/build.log"
	die "dpkg-buildpackage failed"
fi
t1=$(date +%s)
deb=$(ls "$TMP"/${PKG}_*.deb 2>/dev/null | grep -v dbgsym | head -1)
[ -n "$deb" ] || die "no .deb built"
say "built $(basename "$deb") in $((t1 - t0)) s"
if [ -n "${SCTPT_DEB_KEEP:-}" ]; then
	mkdir -p "$SCTPT_DEB_KEEP" && cp "$TMP"/*.deb "$SCTPT_DEB_KEEP"/
fi

# From here on the package is (maybe partly) installed: the trap purges it.
installed=1
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"$deb" >"$TMP/install.log" 2>&1; then
	tail -20 "$TMP/install.log"
	die "installing $deb failed"
fi
say "installed: $(dpkg-query -W -f='${Package} ${Version}' "$PKG")"

rc=0
want=(/usr/bin/sctpt /usr/bin/sctpt-lab /usr/share/man/man1/sctpt.1.gz
      /usr/share/man/man1/sctpt-lab.1.gz /usr/share/man/man5/sctpt.json.5.gz
      /lib/systemd/system/sctpt-server@.service /lib/systemd/system/sctpt-client@.service)
for f in "${want[@]}"; do
	if ! dpkg -S "$f" >/dev/null 2>&1 && ! dpkg -L "$PKG" | grep -qx "$f"; then
		say "the package lacks $f"; rc=1
	fi
done
if ! grep -q '^ExecStart=/usr/bin/sctpt server' /lib/systemd/system/sctpt-server@.service; then
	say "sctpt-server@.service does not start /usr/bin/sctpt"; rc=1
fi
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify --man=no /lib/systemd/system/sctpt-server@.service \
		/lib/systemd/system/sctpt-client@.service 2>&1)
	if echo "$out" | grep -qiE 'sctpt-(server|client)@|unknown'; then
		say "systemd-analyze verify: $out"; rc=1
	fi
fi
/usr/bin/sctpt version | grep -q '^sctpt ' || { say "/usr/bin/sctpt version failed"; rc=1; }

say "running ${TESTS[*]} against /usr/bin/sctpt"
SCTPT_BIN=/usr/bin/sctpt python3 tests/integration/run.py "${TESTS[@]}" \
	>"$TMP/tests.log" 2>&1
trc=$?
sed 's/^/  /' "$TMP/tests.log" | grep -E '^  (PASS|FAIL)|passed, [0-9]+ failed'
if [ $trc -ne 0 ] || ! grep -qE "^${#TESTS[@]} passed, 0 failed" "$TMP/tests.log"; then
	tail -40 "$TMP/tests.log"
	rc=1
fi
t2=$(date +%s)
say "build $((t1 - t0)) s, install and tests $((t2 - t1)) s"
if [ $rc -eq 0 ]; then say PASS; else say FAIL; fi
exit $rc
