#!/usr/bin/env bash
# Builds the Debian package swift-lvs_VERSION_ARCH.deb from this tree (dpkg-deb, no debhelper):
# lvsd and lvsadm (release build, Swift's runtime and Foundation linked in with
# --static-swift-stdlib: the package runs where no Swift toolchain is), their man pages, the
# systemd unit (packaging/lvsd.service), /etc/default/lvsd and /etc/lvsd/keepalived.conf
# (conffiles), the docs and samples under /usr/share/doc/swift-lvs/, and `ipvsadm` as an
# update-alternatives link to lvsadm (priority 10; a real ipvsadm's file is never replaced).
#
#   scripts/package.sh [--out DIR]      build; prints the .deb's path on its last line
#
# The build goes to .build-package/ (its own scratch path: the flags differ from `swift build -c
# release`'s). Exit 0 with the package built, 1 on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$root/.build-package/deb
while [[ $# -gt 0 ]]; do
    case $1 in
    --out) out=$2; shift 2 ;;
    *) echo "package.sh: unknown argument '$1' (usage: package.sh [--out DIR])" >&2; exit 1 ;;
    esac
done

name=swift-lvs
# The one place the version is written: lvsd --version prints the same string.
version=$(sed -n 's/.*static let string = "\([^"]*\)".*/\1/p' Sources/LVSDaemon/PackageVersion.swift)
[[ -n $version ]] || { echo "package.sh: no version in Sources/LVSDaemon/PackageVersion.swift" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# PACKAGE_SCRATCH: the build directory (scripts/test.sh passes its own release build, made with
# the same flags, so that nothing is built twice).
scratch=${PACKAGE_SCRATCH:-$root/.build-package}

echo "[package] swift build -c release --static-swift-stdlib (lvsd, lvsadm)" >&2
for product in lvsd lvsadm; do
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product" >&2
done
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)

# Nothing the binaries load may come from the toolchain (/opt/swift or any .../usr/lib/swift).
for b in lvsd lvsadm; do
    if ldd "$bin/$b" | grep -E 'swift|Foundation|/opt/' >&2; then
        echo "package.sh: $b still loads the libraries above from the Swift toolchain" >&2
        exit 1
    fi
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/$name
doc=$pkg/usr/share/doc/$name
install -d "$pkg/DEBIAN" "$pkg/usr/sbin" "$pkg/usr/share/man/man8" "$doc/samples" \
    "$pkg/lib/systemd/system" "$pkg/etc/default" "$pkg/etc/lvsd"
for b in lvsd lvsadm; do
    install -m 0755 "$bin/$b" "$pkg/usr/sbin/$b"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/sbin/$b"
done
for m in lvsd lvsadm; do gzip -9n <"docs/man/$m.8" >"$pkg/usr/share/man/man8/$m.8.gz"; done
install -m 0644 packaging/lvsd.service "$pkg/lib/systemd/system/lvsd.service"
install -m 0644 packaging/lvsd.default "$pkg/etc/default/lvsd"
install -m 0644 packaging/keepalived.conf "$pkg/etc/lvsd/keepalived.conf"
install -m 0644 docs/samples/* "$doc/samples/"
for d in docs/*.md; do install -m 0644 "$d" "$doc/"; done
install -m 0644 packaging/copyright "$doc/copyright"
gzip -9n <packaging/changelog >"$doc/changelog.gz"
install -d "$pkg/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$pkg/usr/share/lintian/overrides/$name"

# Maintainer scripts and conffiles.
printf '/etc/default/lvsd\n/etc/lvsd/keepalived.conf\n' >"$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/$s" "$pkg/DEBIAN/$s"; done

# Depends: what the binaries load (libc, libssl, libbpf, libxdp), as Debian computes it.
shlib=$stage/shlib
mkdir -p "$shlib/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" >"$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O "$pkg/usr/sbin/lvsd" "$pkg/usr/sbin/lvsadm" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $depends ]] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: swift-lvs developers <swift-lvs@localhost.localdomain>
Installed-Size: $size
Depends: $depends, nftables, iproute2, procps
Suggests: keepalived
Section: net
Priority: optional
Description: user-space Linux Virtual Server director (Direct Routing)
 lvsd forwards the frames of virtual services to real servers in Direct
 Routing mode from user space (packet sockets, AF_XDP, XDP or tc), without
 the kernel's IPVS. lvsadm configures it with ipvsadm's syntax and is
 registered as an ipvsadm alternative; lvsd reads keepalived.conf's virtual
 servers, health checks and VRRP instances.
EOF

(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/${name}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "$deb"
