#!/usr/bin/env bash
# Every relative link in README.md, BENCHMARKS.md, DEVELOPERS.md and docs/*.md points at a file or
# directory that exists (anchors are not checked), so moving a page cannot leave a dead link.
# Exit 0 pass, 1 fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fail=0 links=0
for f in README.md BENCHMARKS.md DEVELOPERS.md docs/*.md; do
    [[ -f $f ]] || continue
    dir=$(dirname "$f")
    # [text](target): targets without a scheme, the anchor cut off
    while IFS= read -r target; do
        target=${target%%#*}
        [[ -z $target || $target == *://* || $target == mailto:* ]] && continue
        links=$((links + 1))
        [[ -e $dir/$target ]] || { echo "FAIL: $f links to $target, which does not exist"; fail=1; }
    done < <(grep -oE '\]\([^)]+\)' "$f" | sed -E 's/^\]\((.*)\)$/\1/')
done
((links > 20)) || { echo "FAIL: only $links relative links found: the search is broken"; fail=1; }
if ((fail)); then echo "0 passed, 1 failed"; exit 1; fi
echo "ok: $links relative links resolve"
echo "1 passed, 0 failed"
