#!/usr/bin/env bash
# Installs what sctpt needs to build and test, from Debian packages.
# As root it installs whatever is missing; as anyone else it only says what is missing.
set -euo pipefail

BUILD_PKGS=(gcc clang libclang-rt-14-dev pkg-config meson ninja-build
            libevent-dev libusrsctp-dev libssl-dev libjansson-dev libcmocka-dev
            libqrencode-dev)
TEST_PKGS=(curl python3 ncat socat shadowsocks-libev procps iproute2 tshark util-linux
           dnsmasq-base bind9-dnsutils
           tor obfs4proxy tinyproxy dante-server microsocks
           iputils-ping openssh-server openssh-client chromium)

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

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
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
echo "setup: done"
