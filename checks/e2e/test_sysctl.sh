#!/usr/bin/env bash
# e2e-planes: afpacket
# The kernel's run-time settings (issue 16): lvsd refuses a bad settings file or --set-sysctl
# (the error names file:line or the option, non-zero exit); started with a settings file, lvsd
# shows its values in `lvsadm daemon sysctl` and `lvsadm daemon status`; lvsadm refuses a bad
# name or value and changes nothing; a mid-stream ACK (no SYN seen) from the client through the
# VIP is scheduled only once sloppy_tcp=1 is set at run time, while curls keep working.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
e2e_trap
e2e_tmpdir >/dev/null
tmp=$E2E_TMP

# ------------------------------------------------------ refused at start (no lab needed: lvsd
# stops while parsing its command line, before it touches any interface)
printf '# bad\nsloppy_tcp = 1\nconn_reuse_mode = 9\n' >"$tmp/bad.conf"
if out=$(timeout 20 "$(lvs_bin)/lvsd" --interface none0 --settings "$tmp/bad.conf" 2>&1); then
    e2e_fail "lvsd accepted a bad settings file"
fi
assert_match "$out" "bad.conf:3: conn_reuse_mode: invalid value" "a bad settings file names file:line"
if out=$(timeout 20 "$(lvs_bin)/lvsd" --interface none0 --set-sysctl nat_icmp_send=1 2>&1); then
    e2e_fail "lvsd accepted --set-sysctl nat_icmp_send=1"
fi
assert_match "$out" "set-sysctl nat_icmp_send=1: nat_icmp_send: a kernel setting lvsd does not have" "an unsupported setting is named"
e2e_log "ok: bad settings refused at start"

# ------------------------------------------------------ started with a settings file
cat >"$tmp/sysctl.conf" <<'CONF'
# lvsd run-time settings (sysctl.conf syntax)
net.ipv4.vs.expire_nodest_conn = 1
sloppy_tcp = 0
conn_reuse_mode=2
CONF
export LVS_LAB_LVSD_ARGS="${LVS_LAB_LVSD_ARGS:-} --settings $tmp/sysctl.conf --set-sysctl expire_quiescent_template=1"
lab_start --director lvsd

list=$(lab_lvsadm daemon sysctl)
for want in "expire_nodest_conn = 1" "sloppy_tcp = 0" "conn_reuse_mode = 2" "expire_quiescent_template = 1" "drop_entry = 1"; do
    grep -qxF "$want" <<<"$list" || { echo "$list" >&2; e2e_fail "lvsadm daemon sysctl lacks '$want'"; }
done
assert_match "$(lab_lvsadm daemon status)" "sysctl: .*conn_reuse_mode=2 .*expire_nodest_conn=1 .*sloppy_tcp=0" "status shows the settings"
e2e_log "ok: the settings file and --set-sysctl applied"

# A mid-stream ACK from the client (raw socket: no SYN before it) to VIP:80 from port $1.
mid_stream_ack() {
    lab_exec client /usr/bin/python3 - "$VIP" "$1" <<'PY'
import socket, struct, sys
vip, sport = sys.argv[1], int(sys.argv[2])
src = "192.168.1.12"
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
ACK = 0x10
hdr = struct.pack("!HHIIBBHHH", sport, 80, 1000, 2000, 5 << 4, ACK, 65535, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(vip) + struct.pack("!BBH", 0, 6, len(hdr))
hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.bind((src, 0))
s.sendto(hdr, (vip, 0))
print("sent")
PY
}
listed() { lab_lvsadm -Lnc | grep -q "192\.168\.1\.12:$1 "; }

a=$(curl_rs "http://$VIP/")
[[ $a == 0[12] ]] || e2e_fail "curl before: $a"
mid_stream_ack 41001 >/dev/null
sleep 1
! listed 41001 || e2e_fail "sloppy_tcp=0: a mid-stream ACK was scheduled"
e2e_log "ok: sloppy_tcp=0: the mid-stream ACK was not scheduled"

# ------------------------------------------------------ refused at run time: nothing changes
before=$(lab_lvsadm daemon sysctl)
for bad in "nat_icmp_send=1" "sloppy_tcp=2" "no_such" "amemthresh=20"; do
    if out=$(lab_lvsadm daemon sysctl sloppy_tcp=1 "$bad" 2>&1); then e2e_fail "lvsadm daemon sysctl accepted $bad"; fi
    assert_match "$out" "${bad%%=*}" "the refusal of $bad names it"
done
assert_eq "$before" "$(lab_lvsadm daemon sysctl)" "a refused change changed nothing"
e2e_log "ok: bad names and values refused by lvsadm"

# ------------------------------------------------------ sloppy_tcp=1 at run time
assert_eq "sloppy_tcp = 1" "$(lab_lvsadm daemon sysctl sloppy_tcp=1)" "lvsadm daemon sysctl sloppy_tcp=1"
assert_eq "sloppy_tcp = 1" "$(lab_lvsadm daemon sysctl net.ipv4.vs.sloppy_tcp)" "read back"
assert_match "$(lab_lvsadm daemon status)" "sysctl: .*sloppy_tcp=1" "status shows the change"
mid_stream_ack 41002 >/dev/null
wait_for 10 "the mid-stream ACK scheduled with sloppy_tcp=1" listed 41002 >/dev/null
a=$(curl_rs "http://$VIP/")
[[ $a == 0[12] ]] || e2e_fail "curl after: $a"
assert_lvsd_alive
e2e_log "ok: sloppy_tcp=1 set at run time: the mid-stream ACK was scheduled, curls still work"
