#!/usr/bin/env bash
# e2e-planes: afpacket
# keepalived script security (issue 13 item 9). With `script_user nobody`, a
# MISC_CHECK script runs as uid 65534 (and its group), with PATH only in its
# environment, and holds no descriptor but 0, 1 and 2, although lvsd has its
# sync daemon's socket and a control connection open. Then a reload (SIGHUP)
# to `enable_script_security` + `script_user root` with a world-writable script:
# lvsd refuses it with keepalived's message naming the file, removes that
# MISC_CHECK, and the script never runs.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
tmp=$(e2e_tmpdir)
chmod 755 "$tmp" # nobody must reach its script; only root may write here
out=$tmp/out
mkdir -p "$out"
chmod 1777 "$out" # the scripts' output, written as nobody
cat >"$tmp/whoami.sh" <<SH
#!/bin/sh
# what a script gets from lvsd: its user and groups, environment, descriptors
{ id -u; id -g; id -G; } >"$out/id.tmp" && mv -f "$out/id.tmp" "$out/id"
env >"$out/env.tmp" && mv -f "$out/env.tmp" "$out/env"
(exec ls -l /proc/self/fd) >"$out/fds.tmp" && mv -f "$out/fds.tmp" "$out/fds"
exit 0
SH
chmod 755 "$tmp/whoami.sh"
cat >"$tmp/writable.sh" <<SH
#!/bin/sh
touch "$out/writable.ran"
exit 0
SH
chmod 777 "$tmp/writable.sh"

# conf GLOBALS SCRIPT: the keepalived.conf with those global_defs lines and rs1's MISC_CHECK script.
conf() {
    cat <<CONF
global_defs {
    router_id e2e_script_security
$1
}
virtual_server 192.168.1.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.31 80 {
        weight 1
        MISC_CHECK {
            misc_path "$2"
            misc_timeout 5
        }
    }
    real_server 192.168.1.32 80 {
        weight 1
    }
}
CONF
}
conf "    script_user nobody" "$tmp/whoami.sh" >"$tmp/keepalived.conf"
ka_lab_start "$tmp/keepalived.conf"

# A descriptor lvsd holds for its lifetime and had no close-on-exec: the sync daemon's socket.
lab_lvsadm --start-daemon master || e2e_fail "--start-daemon master failed"
rm -f "$out/id" "$out/env" "$out/fds"
wait_for 15 "the MISC_CHECK script ran after the sync daemon started" test -s "$out/fds" >/dev/null
wait_for 5 "the script wrote its ids" test -s "$out/id" >/dev/null
e2e_log "script's ids: $(tr '\n' ' ' <"$out/id")"
mapfile -t ids <"$out/id"
assert_eq 65534 "${ids[0]}" "uid of the MISC_CHECK script with script_user nobody"
assert_eq "$(id -g nobody)" "${ids[1]}" "gid of the script (nobody's group)"
assert_eq "$(id -g nobody)" "${ids[2]}" "the script's groups (only nobody's group)"
e2e_log "script's environment: $(tr '\n' ' ' <"$out/env")"
grep -qx 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$out/env" || e2e_fail "PATH of the script is not /usr/sbin:/usr/bin:/sbin:/bin: $(cat "$out/env")"
! grep -q '^LVS_\|^HOME=\|^E2E_' "$out/env" || e2e_fail "the script got lvsd's environment: $(cat "$out/env")"
cat "$out/fds" >&2
# ls's own handle on /proc/self/fd is not the script's.
fds=$(awk '/ -> / && $NF !~ /\/fd$/ { print $(NF-2) }' "$out/fds" | sort -n | tr '\n' ' ')
assert_eq "0 1 2 " "$fds" "descriptors the script holds"

# Reload to script security with a world-writable script run as root.
conf "    enable_script_security
    script_user root" "$tmp/writable.sh" >"$tmp/keepalived.conf"
kill -HUP "$(lvsd_pid)"
refused() { grep -qF "Unsafe permissions found for script '$tmp/writable.sh' - disabling." "$LAB_STATE/lvsd.log"; }
wait_for 10 "lvsd refuses the world-writable script, naming it" refused >/dev/null
e2e_log "ok: $(grep -F "Unsafe permissions found" "$LAB_STATE/lvsd.log" | tail -n 1)"
assert_log "Disabling misc script $tmp/writable\\.sh due to insecure" "the MISC_CHECK is disabled"
assert_log "configuration reloaded" "the reload was applied"
sleep 3 # three delay_loops: the refused script must not run
[[ ! -e $out/writable.ran ]] || e2e_fail "the refused world-writable script ran"
e2e_log "ok: the refused script did not run in 3 s (delay_loop 1)"
assert_lvsd_alive
e2e_log "PASS"
