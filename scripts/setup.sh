#!/usr/bin/env bash
# Installs everything mslb's lab and tests need on a fresh Debian 12 machine (run as root), then
# installs the npm packages, builds the TUN addon and compiles the TypeScript. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js >= 20 and npm, first: everything below needs them, and Debian 12's own nodejs is 18.
need_node() {
  echo "setup: $1" >&2
  echo "setup: mslb needs Node.js 20 or later (22 or 24 LTS recommended) with npm. Debian 12's own nodejs is 18; get a current one from" >&2
  echo "setup:   NodeSource: curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs" >&2
  echo "setup:   or nvm:      https://github.com/nvm-sh/nvm (nvm install 22), then run this script again" >&2
  exit 1
}
command -v node >/dev/null 2>&1 || need_node "node is not on the PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] 2>/dev/null || need_node "node $(node --version 2>/dev/null || echo '?') is too old"
command -v npm >/dev/null 2>&1 || need_node "npm is not on the PATH (Debian packages it apart: apt-get install npm, or use NodeSource/nvm)"

debs=(iproute2 iputils-ping procps curl openssl ethtool nftables tshark tcpdump iperf3 python3 python3-scapy
      make g++ prometheus psmisc util-linux libcap2-bin bird2 docker-compose)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: installing them needs root: run 'sudo ./scripts/setup.sh' (or as root), or apt-get install them yourself" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The prometheus package starts a server on :9090 at install; the lab and tests start their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  # Likewise bird2's own daemon: the scale-out lab runs one BIRD per namespace with its own config.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now bird >/dev/null 2>&1 || true; fi
fi

# npm ci runs the root install script (node-gyp-build: the prebuilt TUN addon from prebuilds/, or a
# node-gyp compile where none fits) and prepare (tsc -> dist/). The lab and the tests then run the
# addon compiled from this tree (build/Release is loaded before prebuilds/), so they test its sources.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
  npm run --silent build:native >/dev/null
else
  npm run --silent build:native >/dev/null
  npm run --silent build
fi
echo "setup: ready"
