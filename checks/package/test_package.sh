#!/usr/bin/env bash
# The Debian package (scripts/package.sh): it builds; lintian finds no error or warning (the
# overrides in packaging/lintian-overrides say why each is there); `systemd-analyze verify`
# accepts the unit; on this machine `dpkg -i` makes `ipvsadm` run lvsadm through the
# alternative, and a purge leaves no file behind; in a fresh Debian 12 root (debootstrap
# --variant=minbase, no Swift toolchain) the package installs, `lvsadm -h`, `lvsd --version` and
# `lvsd --check-config` on the installed samples run, and a real ipvsadm's file is not replaced.
#
# PACKAGE_DEB: a .deb already built (default: run scripts/package.sh). The Debian root is made
# once and kept as a tarball in PACKAGE_ROOT_CACHE (default /var/cache/swift-lvs-test): its first
# run needs Debian's mirror (SKIP, said plainly, when debootstrap cannot reach it).
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
cleanup() {
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
# The places a package can write to (the rest of the machine changes under other work).
watched=(/etc /usr/sbin /usr/bin /usr/share/man/man8 /usr/share/doc /usr/share/lintian /lib/systemd /usr/lib/systemd /var/lib/dpkg/alternatives /var/lib/systemd /var/lib/lvsd /run/lvsd)
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
tarball=$cache/bookworm-minbase-$(echo "$deps" | sha256sum | cut -c1-12).tar
if [[ ! -f $tarball ]]; then
    echo "making the Debian 12 root (debootstrap --variant=minbase bookworm, with $deps): once"
    mkdir -p "$cache"
    if timeout 900 debootstrap --variant=minbase --include="$deps" bookworm "$tmp/bootstrap" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1; then
        tar -C "$tmp/bootstrap" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        rm -rf "$tmp/bootstrap"
    else
        echo "SKIP: debootstrap cannot make a Debian 12 root here (no access to Debian's mirror?): $(tail -2 "$tmp/debootstrap.log" | tr '\n' ' ')"
        rm -rf "$tmp/bootstrap" "$tarball.part"
        echo "$pass passed, $fail failed"
        ((fail == 0)); exit
    fi
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

echo "$pass passed, $fail failed"
((fail == 0))
