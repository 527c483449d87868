#!/usr/bin/env bash
# Every external command that scripts/, checks/ and bench/ call is on a fresh Debian 12 machine of
# this kind or installed by scripts/deps.sh; deps.sh's own table names real packages.
# Run after scripts/deps.sh (scripts/test.sh does). Exit 0 pass, 1 fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
# 1. The scripts' commands, found by parsing them, are each provided.
timeout 300 python3 "$root/checks/deps/external_commands.py" || fail=1
# 2. deps.sh verifies after installing: with a command whose package does not provide it, it exits
#    non-zero and names the command (a copy of deps.sh with one bogus entry, nothing installed).
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/scripts" "$tmp/bpf"
sed 's/^COMMANDS=($/COMMANDS=(\n    lvs-no-such-command:iproute2/' "$root/scripts/deps.sh" >"$tmp/scripts/deps.sh"
chmod +x "$tmp/scripts/deps.sh"
printf 'all:\n\t@true\n' >"$tmp/bpf/Makefile"
rc=0; out=$(timeout 600 "$tmp/scripts/deps.sh" 2>&1) || rc=$?
if [[ $rc -eq 0 || $out != *"lvs-no-such-command (package iproute2)"* ]]; then
    echo "FAIL: deps.sh with a command its package lacks: exit $rc, output: $out"
    fail=1
else
    echo "ok: deps.sh names a command still missing after the install (exit $rc)"
fi
# 3. --list names each command once with a package that exists.
while read -r cmd pkg; do
    apt-cache show "$pkg" >/dev/null 2>&1 || { echo "FAIL: deps.sh lists $cmd from package $pkg, which apt does not know"; fail=1; }
done < <("$root/scripts/deps.sh" --list)
if ((fail)); then echo "0 passed, 1 failed"; exit 1; fi
echo "1 passed, 0 failed"
