#!/usr/bin/env bash
# Installs everything that scripts/, checks/ and bench/ call on a fresh Debian 12 machine (idempotent),
# then checks that every command is there and fails naming any that is still missing.
#
#   scripts/deps.sh          install what is missing, then verify
#   scripts/deps.sh --list   print "COMMAND PACKAGE" for every command this script provides
#
# checks/deps/test_deps.sh checks that every external command the scripts call is either on a fresh
# machine or in the table below, so a forgotten tool fails the test suite, not a new user's first try.
set -euo pipefail

# command:package, one line each: every external command that the scripts, tests and benchmarks call
# and that a fresh Debian 12 machine of this kind lacks.
COMMANDS=(
    ping:iputils-ping           # lvs-lab: the client reaches the director before the demo
    nginx:nginx                 # the real servers
    tcpdump:tcpdump             # the capture proof of the MAC rewrite
    nft:nftables                # the nft director and lvsd's kernel guard
    ip:iproute2
    tc:iproute2
    ethtool:ethtool             # offloads in the lab
    curl:curl
    sysctl:procps
    python3:python3             # checks/e2e/hostile.py, checks/deps
    wrk:wrk                     # bench/run.sh load
    perf:linux-perf             # bench/run.sh CPU counters
    trafgen:netsniff-ng         # fast-path tests: frames from a transmit ring
    bpftool:bpftool             # test_startup_signals: BPF programs left on an interface
    clang:clang                 # make -C bpf: the lab's xdp_pass.o
    make:make
    shfmt:shfmt                 # checks/deps: parses the scripts to find the commands they call
    groff:groff-base            # checks/docs/test_man.sh: renders the man pages
    man:man-db                  # checks/docs/test_man.sh: man -l
    keepalived:keepalived       # the HA tests' VRRP peer (test_ha_keepalived_interop), lvs-lab's baseline pair
    lintian:lintian             # checks/package: the .deb is lintian-clean
    debootstrap:debootstrap     # checks/package: a fresh Debian 12 root to install the .deb into
    systemd-nspawn:systemd-container # checks/package: boots that root with systemd to run the unit
    vtysh:frr                   # lvs-lab --ecmp: the router's and a director's routing daemon (zebra, bgpd, bfdd)
    bird:bird2                  # lvs-lab --ecmp: a director's routing daemon
    birdc:bird2
    exabgp:exabgp               # the ExaBGP announcer helper (issue 17)
)
# Files rather than commands: headers and Python modules.
FILES=(
    /usr/include/openssl/ssl.h:libssl-dev          # CLVSTLS (SSL_GET)
    /usr/include/xdp/xsk.h:libxdp-dev              # AF_XDP sockets
    /usr/include/bpf/libbpf.h:libbpf-dev           # the BPF loader
    /usr/include/bpf/bpf_helpers.h:libbpf-dev      # lvs_xdp.c
)
PY_MODULES=(scapy:python3-scapy)

pkg_of() { local p=${1#*:}; echo "${p%%[[:space:]]*}"; }

if [[ ${1:-} == --list ]]; then
    for pair in "${COMMANDS[@]}"; do echo "${pair%%:*} $(pkg_of "$pair")"; done
    for pair in "${PY_MODULES[@]}"; do echo "py:${pair%%:*} $(pkg_of "$pair")"; done
    exit 0
fi
[[ $# -eq 0 ]] || { echo "deps.sh: unknown argument '$1' (usage: deps.sh [--list])" >&2; exit 2; }

need=()
add() { local p; for p in "${need[@]}"; do [[ $p == "$1" ]] && return; done; need+=("$1"); }
for pair in "${COMMANDS[@]}"; do command -v "${pair%%:*}" >/dev/null 2>&1 || add "$(pkg_of "$pair")"; done
for pair in "${FILES[@]}"; do [[ -e ${pair%%:*} ]] || add "$(pkg_of "$pair")"; done
for pair in "${PY_MODULES[@]}"; do /usr/bin/python3 -c "import ${pair%%:*}" 2>/dev/null || add "$(pkg_of "$pair")"; done
if [[ ${#need[@]} -gt 0 ]]; then
    echo "[deps] apt-get install -y ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A temporary policy-rc.d keeps the packages' scripts from starting services on the host (nginx).
    added_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
missing=()
for pair in "${COMMANDS[@]}"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair%%:*} (package $(pkg_of "$pair"))"); done
for pair in "${FILES[@]}"; do [[ -e ${pair%%:*} ]] || missing+=("${pair%%:*} (package $(pkg_of "$pair"))"); done
for pair in "${PY_MODULES[@]}"; do /usr/bin/python3 -c "import ${pair%%:*}" 2>/dev/null || missing+=("python module ${pair%%:*} (package $(pkg_of "$pair"))"); done
if [[ ${#missing[@]} -gt 0 ]]; then
    printf '[deps] still missing after the install: %s\n' "${missing[@]}" >&2
    exit 1
fi
# xdp_pass.o, the lab's program for the switch port (lvsd's own BPF program is built by swift build).
make -s -C "$(cd "$(dirname "$0")/.." && pwd)/bpf"
