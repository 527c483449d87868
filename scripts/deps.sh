#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine (idempotent).
set -euo pipefail
need=()
for pair in nginx:nginx-light tcpdump:tcpdump nft:nftables curl:curl ip:iproute2 ethtool:ethtool python3:python3 wrk:wrk trafgen:netsniff-ng; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
/usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
# The AF_XDP data plane: libxdp/libbpf to build and link, clang for the XDP program.
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v xdp-loader >/dev/null 2>&1 || need+=(xdp-tools)
[ -e /usr/include/xdp/xsk.h ] || need+=(libxdp-dev)
[ -e /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "[deps] apt-get install -y ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# xdp_pass.o, the lab's program for the switch port (lvsd's own BPF program is built by swift build).
make -s -C "$(cd "$(dirname "$0")/.." && pwd)/bpf"
