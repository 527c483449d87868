#!/usr/bin/env bash
# The seed scenario in one command: builds swift-lvs, starts the namespace lab (client, director
# running lvsd, two nginx real servers on one bridge), applies the seed's three ipvsadm commands
# through lvsadm, prints the curl answers, `lvsadm -Ln --stats` and the capture proof of the MAC
# rewrite, then removes everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)" >&2; exit 1; }
scripts/deps.sh
echo "[demo] swift build -c release"
swift build -c release >/dev/null
export LVS_BIN=$(swift build -c release --show-bin-path)
prefix=lvsdemo$$
trap 'scripts/lvs-lab down --prefix "$prefix" >/dev/null 2>&1 || true' EXIT INT TERM
scripts/lvs-lab up --prefix "$prefix"
scripts/lvs-lab demo --prefix "$prefix"
