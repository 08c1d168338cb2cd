#!/usr/bin/env bash
# Demonstration of sctpt's main job, on loopback only: start a web server,
# an sctpt server in proxy mode and an sctpt client, fetch a page and a
# 20 MB file through the tunnel with curl, and say what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

./scripts/setup.sh
# SCTPT_DEMO_BUILD picks the build directory (default build/, which
# ./scripts/test.sh's release build also uses: an existing configured build
# is reused as it is, only sctpt is brought up to date).
BUILD=${SCTPT_DEMO_BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" sctpt >/dev/null
SCTPT="$BUILD/sctpt"

WORK=$(mktemp -d /tmp/sctpt-demo.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
# A signal (Ctrl-C, timeout) ends the demo through cleanup too.
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2; return 1
}

WEB=$(free_port); TUN=$(free_port); SOCKS=$(free_port)
mkdir -p "$WORK/www"
cat > "$WORK/www/index.html" <<HTML
<html><body><h1>Hello through sctpt</h1><p>Served on 127.0.0.1:$WEB.</p></body></html>
HTML
head -c 20000000 /dev/urandom > "$WORK/www/big.bin"

echo "1. web server on 127.0.0.1:$WEB (python3 -m http.server)"
(cd "$WORK/www" && exec python3 -m http.server "$WEB" --bind 127.0.0.1) >"$WORK/web.log" 2>&1 &
PIDS+=($!)
echo "2. server identity: sctpt keygen (the client gets the cert= it prints)"
CERT=$("$SCTPT" keygen --key "$WORK/server.key" 2>/dev/null | sed 's/^cert=//')
echo "   cert=$CERT"
echo "3. sctpt server, proxy mode, UDP 127.0.0.1:$TUN (loopback admitted with --allow)"
"$SCTPT" server --listen "udp://127.0.0.1:$TUN" --key "$WORK/server.key" --proxy \
	--allow 127.0.0.0/8 -v \
	>"$WORK/server.log" 2>&1 &
PIDS+=($!)
echo "4. sctpt client, SOCKS on 127.0.0.1:$SOCKS, one encrypted SCTP association to the server"
"$SCTPT" client --server "udp://127.0.0.1:$TUN" --cert "$CERT" --socks "127.0.0.1:$SOCKS" -v \
	>"$WORK/client.log" 2>&1 &
PIDS+=($!)
wait_tcp "$WEB"; wait_tcp "$SOCKS"
for _ in $(seq 1 50); do grep -q "association up" "$WORK/client.log" && break; sleep 0.1; done

echo
echo "5. curl --socks5-hostname 127.0.0.1:$SOCKS http://localhost:$WEB/"
curl -sS --max-time 20 --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$WEB/" | sed 's/^/   | /'

echo
echo "6. 20 MB file through the tunnel, compared with the original"
T0=$(date +%s.%N)
curl -sS --max-time 60 --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$WEB/big.bin" -o "$WORK/got.bin"
T1=$(date +%s.%N)
if cmp -s "$WORK/www/big.bin" "$WORK/got.bin"; then
	printf '   identical (sha256 %s), %s MB/s\n' "$(sha256sum "$WORK/got.bin" | cut -c1-16)" \
		"$(python3 -c "print('%.1f' % (20 / ($T1 - $T0)))")"
else
	echo "   MISMATCH"; exit 1
fi

echo
echo "7. 10 fetches at once, all on the same association (one SCTP stream each)"
CURLS=()
for i in $(seq 1 10); do
	curl -sS --max-time 30 --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$WEB/big.bin" -o "$WORK/p$i.bin" &
	CURLS+=($!)
done
for p in "${CURLS[@]}"; do wait "$p" || true; done
n=0; for i in $(seq 1 10); do cmp -s "$WORK/www/big.bin" "$WORK/p$i.bin" && n=$((n+1)); done
echo "   $n of 10 identical"

echo
echo "8. a destination the server must not relay into (10.0.0.1 is private, not allowed):"
curl -sS --max-time 10 --socks5 "127.0.0.1:$SOCKS" http://10.0.0.1/ -o /dev/null 2>&1 | sed 's/^/   | /' || true

echo
echo "What the server logged:"
sed 's/^/   | /' "$WORK/server.log"
echo "What the client logged:"
sed 's/^/   | /' "$WORK/client.log"
echo
echo "9. what the wire looked like: the first bytes of three datagrams (random, no SCTP header)"
if command -v tshark >/dev/null; then
	timeout 5 tshark -i lo -f "udp port $TUN" -c 3 -T fields -e udp.length -e udp.payload 2>/dev/null \
		| cut -c1-60 | sed 's/^/   | /' &
	CAPTURE=$!
	# tshark takes a moment to start: fetch until it has its three packets.
	for _ in 1 2 3 4 5 6 7 8; do
		sleep 0.5
		kill -0 "$CAPTURE" 2>/dev/null || break
		curl -sS --max-time 5 --socks5-hostname "127.0.0.1:$SOCKS" "http://localhost:$WEB/" -o /dev/null
	done
	# Only the capture: a bare `wait` would also wait for the web server
	# and both sctpt processes, which run until cleanup, i.e. forever.
	wait "$CAPTURE" || true
fi
echo
echo "Demo finished: everything went through one encrypted SCTP association over UDP on loopback."
