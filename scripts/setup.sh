#!/usr/bin/env bash
# Installs what sctpt needs to build and test, from Debian packages.
# As root it installs whatever is missing; as anyone else it only says what is missing.
set -euo pipefail

BUILD_PKGS=(gcc clang libclang-rt-14-dev pkg-config meson ninja-build
            libevent-dev libusrsctp-dev libssl-dev libjansson-dev libcmocka-dev
            libqrencode-dev dpkg-dev debhelper fakeroot)
TEST_PKGS=(curl python3 ncat socat shadowsocks-libev procps iproute2 tshark util-linux
           dnsmasq-base bind9-dnsutils
           tor obfs4proxy tinyproxy dante-server microsocks
           iputils-ping openssh-server openssh-client chromium strace systemd groff-base nodejs)

want=("${BUILD_PKGS[@]}")
case "${1:-}" in
  --build-only) ;;
  *) want+=("${TEST_PKGS[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The lab dashboard's charting package (uPlot) and the browser test's driver
# (playwright-core) come from npm, pinned by src/lab/web/package-lock.json;
# they live in src/lab/web/node_modules, never in the tree.
npm_setup() {
  local web
  web="$(cd "$(dirname "$0")/.." && pwd)/src/lab/web"
  case "${1:-}" in --build-only) return 0 ;; esac
  if [ -f "$web/node_modules/.package-lock.json" ] &&
     [ ! "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    echo "setup: npm packages present"
    return 0
  fi
  # Debian's nodejs comes without npm (its own package); other builds of
  # nodejs bring npm along and conflict with Debian's npm.
  if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null || true
  fi
  if ! command -v npm >/dev/null; then
    echo "setup: npm is missing (apt-get install npm)" >&2
    return 1
  fi
  echo "setup: npm ci in src/lab/web"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  npm_setup "${1:-}"
  exit $?
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_setup "${1:-}"
echo "setup: done"
