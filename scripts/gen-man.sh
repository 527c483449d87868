#!/usr/bin/env bash
# Regenerates docs/man/lvsd.8 from lvsd's ArgumentParser definition with swift-argument-parser's
# generate-manual plugin (it works offline: the package is already a dependency). The page's date
# is that of the last commit that touched lvsd's sources, so an unchanged lvsd gives the same page.
# docs/man/lvsadm.8 is written by hand (lvsadm's grammar is ipvsadm's, not ArgumentParser's).
# checks/docs/test_man.sh checks that every option of `lvsd --help` is on the page.
#
#   scripts/gen-man.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
date=$(git log -1 --format=%cs -- Sources/lvsd Sources/LVSDaemon 2>/dev/null || true)
[[ -n $date ]] || date=$(date -u +%Y-%m-%d)
out=.build/plugins/GenerateManual/outputs/lvsd/lvsd.8
rm -f "$out"
timeout 3600 swift package generate-manual --configuration debug --section 8 --date "$date" \
    --authors "the swift-lvs authors" >&2
[[ -s $out ]] || { echo "gen-man: the plugin wrote no $out" >&2; exit 1; }
mkdir -p docs/man
cp "$out" docs/man/lvsd.8
echo "gen-man: wrote docs/man/lvsd.8 ($date)"
