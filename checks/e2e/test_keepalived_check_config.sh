#!/usr/bin/env bash
# e2e-planes: afpacket
# `lvsd --check-config FILE` (keepalived -t exit codes): a valid file exits 0;
# an unknown keyword is an error naming file:line, exit 5; a keyword missing
# its parameter is fatal, exit 2; `include` with a glob matching two files
# (relative to the including file) is valid and loads both; a vrrp_instance
# block is read (no "not applied" warning), exit 0; keepalived's VRRP errors exit 5
# with its message; a keyword whose value is on the next line, or a VRRP keyword
# without its value, is fatal with keepalived's message, exit 2. No lab needed.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
e2e_trap
tmp=$(e2e_tmpdir)
lvsd=$(lvs_bin)/lvsd

# check FILE: runs the check; sets rc, out (stdout) and err (stderr).
check() {
    rc=0
    timeout 30 "$lvsd" --check-config "$1" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    e2e_log "--check-config ${1#"$tmp"/}: exit $rc"
    [[ -z $out ]] || sed 's/^/    stdout: /' <<<"$out" >&2
    [[ -z $err ]] || sed 's/^/    stderr: /' <<<"$err" >&2
    ((rc != 124)) || e2e_fail "lvsd --check-config $1 timed out"
}

# vs VIP: one virtual server block (16 lines).
vs() {
    cat <<CONF
virtual_server $1 80 {
    delay_loop 2
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.168.1.31 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 192.168.1.32 80 {
        weight 1
        HTTP_GET { url { path / } }
    }
}
CONF
}

# 1. valid
{
    printf 'global_defs {\n    router_id e2e\n}\n'
    vs 192.168.1.100
} >"$tmp/valid.conf"
check "$tmp/valid.conf"
assert_eq 0 "$rc" "valid file: exit status"
assert_match "$out" 'valid' "valid file: says it is valid"
[[ $err != *rror* ]] || e2e_fail "valid file: error output: $err"

# 2. unknown keyword on line 10 -> error file:line, exit 5
{
    printf 'global_defs {\n    router_id e2e\n}\n'
    vs 192.168.1.100 | sed 's/^        weight 2$/        wieght 2/'
} >"$tmp/unknown.conf"
assert_eq "        wieght 2" "$(sed -n 10p "$tmp/unknown.conf")" "line 10 holds the unknown keyword (test setup)"
check "$tmp/unknown.conf"
assert_eq 5 "$rc" "unknown keyword: exit status"
assert_match "$err" "$tmp/unknown\\.conf:10:[^"$'\n'"]*wieght" "unknown keyword: message names file:line and the keyword"

# 3. keyword missing its parameter on line 5 -> fatal, exit 2
{
    printf 'global_defs {\n    router_id e2e\n}\n'
    vs 192.168.1.100 | sed 's/^    delay_loop 2$/    delay_loop/'
} >"$tmp/missing.conf"
assert_eq "    delay_loop" "$(sed -n 5p "$tmp/missing.conf")" "line 5 holds the bare keyword (test setup)"
check "$tmp/missing.conf"
assert_eq 2 "$rc" "keyword without its parameter: exit status"
assert_match "$err" "$tmp/missing\\.conf:5:[^"$'\n'"]*delay_loop" "keyword without its parameter: message names file:line and the keyword"

# 4. include with a glob (relative to the including file) matching two files
mkdir -p "$tmp/inc/conf.d"
printf 'global_defs {\n    router_id e2e\n}\ninclude conf.d/*.conf\n' >"$tmp/inc/main.conf"
vs 192.168.1.100 >"$tmp/inc/conf.d/a.conf"
vs 192.168.1.101 >"$tmp/inc/conf.d/b.conf"
vs 192.168.1.102 >"$tmp/inc/conf.d/c.notincluded"
check "$tmp/inc/main.conf"
assert_eq 0 "$rc" "include with a glob of two files: exit status"
assert_match "$out" '(^|[^0-9])2 virtual servers' "include with a glob: both included files' virtual servers are loaded (and only those)"
# An error inside an included file is reported against that file.
sed -i 's/^    lb_algo wrr$/    lb_algoo wrr/' "$tmp/inc/conf.d/b.conf"
check "$tmp/inc/main.conf"
assert_eq 5 "$rc" "unknown keyword in an included file: exit status"
assert_match "$err" "conf\\.d/b\\.conf:3:[^"$'\n'"]*lb_algoo" "unknown keyword in an included file: message names the included file and line"

# 5. vrrp_instance block -> read and applied, exit 0
{
    printf 'global_defs {\n    router_id e2e\n}\n'
    cat <<'CONF'
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.168.1.100/32 dev lo
    }
}
CONF
    vs 192.168.1.100
} >"$tmp/vrrp.conf"
check "$tmp/vrrp.conf"
assert_eq 0 "$rc" "vrrp_instance: exit status"
[[ $err$out != *"not applied"* && $err$out != *"not implemented"* ]] || e2e_fail "vrrp_instance: still reported as not applied"
assert_match "$out" '1 virtual servers, 1 VRRP instances' "vrrp_instance: the virtual server and the VRRP instance are loaded"

# 5b. keepalived's VRRP cross checks: the same VRID twice on one interface and family -> exit 5
#     with keepalived 2.2.7's message
sed 's/^vrrp_instance VI_1 {$/vrrp_instance VI_2 {/; s#192\.168\.1\.100/32 dev lo#192.168.1.101/32#' "$tmp/vrrp.conf" |
    sed -n '/^vrrp_instance/,/^}$/p' >"$tmp/vi2.part"
cat "$tmp/vrrp.conf" "$tmp/vi2.part" >"$tmp/dupvrid.conf"
check "$tmp/dupvrid.conf"
assert_eq 5 "$rc" "duplicate VRID: exit status"
assert_match "$err" 'VI_1 and VI_2 both use VRID 51 with IPv4 on interface eth0' "duplicate VRID: keepalived's message"

# 5c. a VRRP keyword without its value (auth_pass) -> fatal, exit 2, keepalived's message
sed 's/^        auth_pass secret$/        auth_pass/' "$tmp/vrrp.conf" >"$tmp/vrrpfatal.conf"
check "$tmp/vrrpfatal.conf"
assert_eq 2 "$rc" "auth_pass without a value: exit status"
assert_match "$err" "vrrpfatal\\.conf:12:[^"$'\n'"]*missing a parameter after keyword .auth_pass. at word position 2" "auth_pass without a value: keepalived's message naming file:line"

# 6. a value on the next line, not on its keyword's line (keepalived 2.2.7 exits 2 with
#    "missing a parameter after keyword ... at word position 2"), also in a vrrp_instance
{
    printf 'global_defs {\n    router_id e2e\n}\n'
    printf 'vrrp_instance VI_1 {\n    state MASTER\n    lvs_sync_daemon_interface\n        eth1\n    virtual_router_id 51\n}\n'
    vs 192.168.1.100
} >"$tmp/nextline.conf"
assert_eq "    lvs_sync_daemon_interface" "$(sed -n 6p "$tmp/nextline.conf")" "line 6 holds the keyword without its value (test setup)"
check "$tmp/nextline.conf"
assert_eq 2 "$rc" "value on the next line: exit status"
assert_match "$err" "$tmp/nextline\\.conf:6:[^"$'\n'"]*missing a parameter after keyword .lvs_sync_daemon_interface. at word position 2" "value on the next line: keepalived's message naming file:line"
e2e_log "PASS"
