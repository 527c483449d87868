#!/usr/bin/env bash
# The Debian package (scripts/package.sh): it builds; lintian finds no error or warning (the
# overrides in packaging/lintian-overrides say why each is there); `systemd-analyze verify`
# accepts the unit; on this machine `dpkg -i` makes `ipvsadm` run lvsadm through the
# alternative, and a purge leaves no file behind; in a fresh Debian 12 root (debootstrap
# --variant=minbase, no Swift toolchain) the package installs, `lvsadm -h`, `lvsd --version` and
# `lvsd --check-config` on the installed samples run, and a real ipvsadm's file is not replaced;
# in such a root with systemd, booted by systemd-nspawn, lvsd.service starts (Type=notify),
# reloads, restarts, comes back after kill -9 and stops.
#
# PACKAGE_DEB: a .deb already built (default: run scripts/package.sh). The Debian roots are made
# once and kept as tarballs in PACKAGE_ROOT_CACHE (default /var/cache/swift-lvs-test): their first
# run needs Debian's mirror (SKIP, said plainly, when debootstrap cannot reach it). About 35 s
# with the roots cached and the .deb built; package.sh's first release build takes longer.
# Needs root. Exit 0 pass, 1 fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[[ $EUID -eq 0 ]] || { echo "FAIL: run as root (dpkg -i, chroot)"; exit 1; }
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
name=swift-lvs
tmp=$(mktemp -d)
chroot_dir=$tmp/root
boot_dir=$tmp/boot
boot_pid=
cleanup() {
    [[ -n $boot_pid ]] && kill "$boot_pid" 2>/dev/null && wait "$boot_pid" 2>/dev/null
    mountpoint -q "$chroot_dir/proc" 2>/dev/null && umount "$chroot_dir/proc"
    # Nothing of the package stays on this machine, also when a step above failed.
    dpkg -s "$name" >/dev/null 2>&1 && dpkg --purge "$name" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

deb=${PACKAGE_DEB:-}
if [[ -z $deb ]]; then
    deb=$(timeout 1500 scripts/package.sh | tail -1) || { bad "scripts/package.sh failed"; echo "$pass passed, $fail failed"; exit 1; }
fi
[[ -f $deb ]] && ok "package built: $(basename "$deb")" || { bad "no package at '$deb'"; echo "$pass passed, $fail failed"; exit 1; }

# lintian: no error and no warning (informational tags are printed, not failed on).
rc=0; out=$(timeout 300 lintian --fail-on error,warning --display-info "$deb" 2>&1) || rc=$?
[[ -n $out ]] && echo "$out" | sed 's/^/  lintian: /'
((rc == 0)) && ok "lintian: no error or warning" || bad "lintian exit $rc"

unpacked=$tmp/unpacked
dpkg-deb -x "$deb" "$unpacked"
for want in Type=notify "ExecReload=/bin/kill -HUP \$MAINPID" Restart=on-failure EnvironmentFile=-/etc/default/lvsd CapabilityBoundingSet=; do
    grep -q "^$want" "$unpacked/lib/systemd/system/lvsd.service" && ok "unit has $want" || bad "unit lacks $want"
done

# Nothing in the binaries points into a Swift toolchain.
for b in lvsd lvsadm; do
    if ldd "$unpacked/usr/sbin/$b" | grep -qE 'swift|Foundation|/opt/'; then bad "$b loads toolchain libraries: $(ldd "$unpacked/usr/sbin/$b" | grep -E 'swift|Foundation|/opt/' | tr '\n' ' ')"; else ok "$b loads nothing from a Swift toolchain"; fi
done

# On this machine: install, ipvsadm through the alternative, purge leaves nothing.
# The places a package can write to (the rest of the machine changes under other work; /run/lvsd
# is the running service's and lvsadm realserver's, not the package's).
watched=(/etc /usr/sbin /usr/bin /usr/share/man/man8 /usr/share/doc /usr/share/lintian /lib/systemd /usr/lib/systemd /var/lib/dpkg/alternatives /var/lib/systemd /var/lib/lvsd)
listing() { { find "${watched[@]}" -xdev 2>/dev/null || true; } | LC_ALL=C sort; }
if dpkg -s ipvsadm >/dev/null 2>&1 || dpkg -s "$name" >/dev/null 2>&1; then
    bad "this machine already has ipvsadm or $name installed: the host part needs a machine without them"
else
    listing >"$tmp/before"
    rc=0; out=$(timeout 120 dpkg -i "$deb" 2>&1) || rc=$?
    ((rc == 0)) && ok "dpkg -i on this machine" || bad "dpkg -i exit $rc: $out"
    [[ $(readlink -f /usr/sbin/ipvsadm) == /usr/sbin/lvsadm ]] && ok "/usr/sbin/ipvsadm is the alternative for lvsadm" || bad "/usr/sbin/ipvsadm -> $(readlink -f /usr/sbin/ipvsadm 2>&1)"
    rc=0; out=$(timeout 10 ipvsadm -h 2>&1) || rc=$?
    [[ $out == *"ipvsadm v1.31"* && $out == *"--add-service"* ]] && ok "ipvsadm -h runs lvsadm (exit $rc)" || bad "ipvsadm -h: exit $rc: $out"
    rc=0; out=$(timeout 10 ipvsadm -v 2>&1) || rc=$?
    [[ $out == "ipvsadm v1.31 "* ]] && ok "ipvsadm -v: $out" || bad "ipvsadm -v: exit $rc: $out"
    # The unit as systemd reads it, installed (verify checks ExecStart's binary and the man pages).
    rc=0; out=$(timeout 60 systemd-analyze verify /lib/systemd/system/lvsd.service 2>&1) || rc=$?
    if ((rc == 0)) && [[ -z $out ]]; then ok "systemd-analyze verify lvsd.service: clean"; else bad "systemd-analyze verify exit $rc: $out"; fi
    [[ -f /etc/lvsd/keepalived.conf && -f /etc/default/lvsd ]] && ok "/etc/lvsd/keepalived.conf and /etc/default/lvsd installed" || bad "configuration files missing"
    rc=0; out=$(timeout 60 dpkg --purge "$name" 2>&1) || rc=$?
    ((rc == 0)) && ok "dpkg --purge" || bad "dpkg --purge exit $rc: $out"
    listing >"$tmp/after"
    if diff -u "$tmp/before" "$tmp/after" >"$tmp/diff"; then ok "purge left no file behind (${#watched[@]} places compared)"; else bad "files differ after purge: $(grep '^[+-]/' "$tmp/diff" | tr '\n' ' ')"; fi
fi

# A fresh Debian 12 root without a Swift toolchain, with the package's dependencies.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/[(|].*//; s/ //g' | grep -v '^$' | LC_ALL=C sort -u | paste -sd, -)
cache=${PACKAGE_ROOT_CACHE:-/var/cache/swift-lvs-test}
# root_tarball PACKAGES: a tarball of a debootstrap minbase root with PACKAGES, made once; empty
# output when debootstrap cannot run here.
root_tarball() {
    local tarball
    tarball=$cache/bookworm-minbase-$(echo "$1" | sha256sum | cut -c1-12).tar
    if [[ ! -f $tarball ]]; then
        echo "making a Debian 12 root (debootstrap --variant=minbase bookworm, with $1): once" >&2
        mkdir -p "$cache"
        rm -rf "$tmp/bootstrap"
        if timeout 900 debootstrap --variant=minbase --include="$1" bookworm "$tmp/bootstrap" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1; then
            tar -C "$tmp/bootstrap" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        else
            echo "debootstrap failed: $(tail -2 "$tmp/debootstrap.log" | tr '\n' ' ')" >&2
            rm -f "$tarball.part"
            tarball=
        fi
        rm -rf "$tmp/bootstrap"
    fi
    echo "$tarball"
}
tarball=$(root_tarball "$deps")
if [[ -z $tarball ]]; then
    echo "SKIP: debootstrap cannot make a Debian 12 root here (no access to Debian's mirror?)"
    echo "$pass passed, $fail failed"
    ((fail == 0)); exit
fi
mkdir -p "$chroot_dir"
tar -C "$chroot_dir" -xf "$tarball"
mount -t proc proc "$chroot_dir/proc"
in_root() { timeout 60 chroot "$chroot_dir" "$@"; }
in_root sh -c 'test ! -e /opt/swift && ! ls /usr/lib/swift /usr/lib/*/libswiftCore.so 2>/dev/null' && ok "the Debian root has no Swift toolchain" || bad "the Debian root has Swift in it"
# A real ipvsadm's file (as its package installs it) must not be replaced by the alternative's link.
printf '#!/bin/sh\necho real ipvsadm\n' >"$chroot_dir/usr/sbin/ipvsadm"
chmod 755 "$chroot_dir/usr/sbin/ipvsadm"
cp "$deb" "$chroot_dir/tmp/"
rc=0; out=$(in_root dpkg -i "/tmp/$(basename "$deb")" 2>&1) || rc=$?
((rc == 0)) && ok "dpkg -i in the Debian 12 root" || bad "dpkg -i in the root: exit $rc: $out"
[[ $(in_root /usr/sbin/ipvsadm 2>&1) == "real ipvsadm" ]] && ok "a real /usr/sbin/ipvsadm is left as it was" || bad "the real ipvsadm was replaced"
rc=0; out=$(in_root lvsadm -h 2>&1) || rc=$?
[[ $out == *"--add-service"* ]] && ok "lvsadm -h in the root (exit $rc)" || bad "lvsadm -h in the root: exit $rc: $out"
version=$(dpkg-deb -f "$deb" Version)
rc=0; out=$(in_root lvsd --version 2>&1) || rc=$?
((rc == 0)) && [[ $out == "$version" ]] && ok "lvsd --version in the root: $out" || bad "lvsd --version in the root: exit $rc: '$out' (want $version)"
for sample in /etc/lvsd/keepalived.conf /usr/share/doc/$name/samples/keepalived-dr-http-get.conf /usr/share/doc/$name/samples/ipvsadm.rules; do
    rc=0; out=$(in_root lvsd --check-config "$sample" 2>&1) || rc=$?
    ((rc == 0)) && ok "lvsd --check-config $sample in the root" || bad "lvsd --check-config $sample in the root: exit $rc: $out"
done
rc=0; out=$(in_root dpkg --purge "$name" 2>&1) || rc=$?
((rc == 0)) && ok "dpkg --purge in the root" || bad "dpkg --purge in the root: exit $rc: $out"
umount "$chroot_dir/proc"
rm -rf "$chroot_dir"

# The service under systemd: a Debian 12 root with systemd booted by systemd-nspawn (its own
# network namespace, a veth pair made by a oneshot unit inside), the package installed and lvsd
# enabled on the afpacket plane. Start (READY=1: active only once lvsd is ready), reload,
# restart, a crash (Restart=on-failure), stop.
boot_tar=$(root_tarball "$deps,systemd,systemd-sysv,dbus")
if [[ -z $boot_tar ]] || ! command -v systemd-nspawn >/dev/null; then
    echo "SKIP: the service under systemd-nspawn (no root with systemd, or no systemd-nspawn: package systemd-container)"
else
    mkdir -p "$boot_dir"
    tar -C "$boot_dir" -xf "$boot_tar"
    cp "$deb" "$boot_dir/tmp/"
    mount -t proc proc "$boot_dir/proc"
    rc=0; out=$(timeout 120 chroot "$boot_dir" dpkg -i "/tmp/$(basename "$deb")" 2>&1) || rc=$?
    umount "$boot_dir/proc"
    ((rc == 0)) || bad "dpkg -i in the systemd root: exit $rc: $out"
    printf '%s\n' '[Unit]' 'Description=test: a veth pair for lvsd' 'Before=lvsd.service' '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' \
        'ExecStart=/sbin/ip link add lvs0 type veth peer name lvs1' 'ExecStart=/sbin/ip link set lvs0 up' 'ExecStart=/sbin/ip link set lvs1 up' \
        '[Install]' 'WantedBy=multi-user.target' >"$boot_dir/etc/systemd/system/lab-veth.service"
    echo 'LVSD_OPTIONS="--interface lvs0 --dataplane afpacket --config /etc/lvsd/keepalived.conf"' >"$boot_dir/etc/default/lvsd"
    timeout 60 chroot "$boot_dir" systemctl enable lab-veth.service lvsd.service >/dev/null 2>&1
    timeout 300 systemd-nspawn -D "$boot_dir" --register=no --keep-unit --private-network -b </dev/null >"$tmp/boot.log" 2>&1 &
    boot_pid=$!
    # The container's systemd: timeout -> systemd-nspawn -> systemd (PID 1 inside).
    init=
    for _ in $(seq 300); do
        n=$(pgrep -x systemd-nspawn -P "$boot_pid" | head -1) && init=$(pgrep -x systemd -P "$n" | head -1) && break
        init=; sleep 0.1
    done
    inside() { timeout 60 nsenter -t "$init" -a -r -w "$@"; }
    prop() { inside systemctl show lvsd -p "$1" --value 2>/dev/null; }
    # wait_for PROPERTY VALUE: up to 30 s
    wait_for() { local i; for i in $(seq 300); do [[ $(prop "$1") == "$2" ]] && return 0; sleep 0.1; done; return 1; }
    if [[ -z $init ]]; then
        bad "systemd-nspawn did not boot: $(tail -5 "$tmp/boot.log" | tr '\n' ' ')"
    else
        if wait_for ActiveState active && [[ $(prop StatusText) == "forwarding on lvs0 (afpacket)" ]]; then
            ok "booted: lvsd.service active after READY=1 (status: $(prop StatusText))"
        else
            bad "lvsd.service not active: $(prop ActiveState) $(inside journalctl -u lvsd --no-pager 2>&1 | tail -5 | tr '\n' ' ')"
        fi
        pid1=$(prop MainPID)
        inside systemctl reload lvsd && [[ $(prop StatusText) == reloaded && $(prop MainPID) == "$pid1" ]] &&
            ok "systemctl reload: SIGHUP, RELOADING/READY (same process)" || bad "reload: $(prop ActiveState) $(prop StatusText): $(inside journalctl -u lvsd --no-pager 2>&1 | tail -6 | tr '\n' ' ')"
        inside systemctl restart lvsd && wait_for ActiveState active && [[ $(prop MainPID) != "$pid1" ]] &&
            ok "systemctl restart: a new lvsd, active" || bad "restart: $(prop ActiveState) $(prop MainPID)"
        pid2=$(prop MainPID)
        inside systemctl kill -s KILL lvsd || true
        # Back means a new main process that is active: until systemd has reaped the killed one,
        # the unit may still read "active" (and a stop in its auto-restart state ends "failed").
        restarted() {
            local p
            p=$(prop MainPID)
            [[ $p != 0 && $p != "$pid2" && $(prop NRestarts) == 1 && $(prop ActiveState) == active && $(prop SubState) == running ]]
        }
        back=0
        for _ in $(seq 300); do restarted && { back=1; break; }; sleep 0.1; done
        ((back)) && ok "kill -9: Restart=on-failure brought lvsd back (a new main process, active)" ||
            bad "after kill -9: $(prop ActiveState)/$(prop SubState), $(prop NRestarts) restarts, main pid $(prop MainPID) (killed: $pid2)"
        inside systemctl stop lvsd && [[ $(prop ActiveState) == inactive && $(prop Result) == success ]] &&
            ok "systemctl stop: inactive, result success" ||
            bad "stop: $(prop ActiveState) $(prop Result) (exit: $(prop ExecMainCode)/$(prop ExecMainStatus)); the journal: $(inside journalctl -u lvsd --no-pager 2>&1 | tail -25)"
        inside systemctl poweroff >/dev/null 2>&1 || true
    fi
    for _ in $(seq 300); do kill -0 "$boot_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$boot_pid" 2>/dev/null || true
    wait "$boot_pid" 2>/dev/null || true
    boot_pid=
fi

echo "$pass passed, $fail failed"
((fail == 0))
