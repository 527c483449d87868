#!/usr/bin/env bash
# e2e-planes: afpacket tc
# `ipvsadm -e` changing a real server's forwarding method applies to new connections only, as in
# the kernel (a connection keeps the method it was created with: ip_vs_bind_dest). On the NAT lab
# (`lvs-lab up --method nat`: the real servers hold no VIP), a rate-limited download runs through
# the VIP while both real servers are edited from -m to -g:
#   - the download goes on as NAT and arrives intact (its replies still come back as the VIP);
#   - a new connection is DR now, which cannot work on this lab (no VIP on the real servers): it
#     gets no answer, and `-Ln` lists the servers as Route;
#   - edited back to -m, new connections are answered again.
# Before the method was the connection's, the edit re-routed the live download as DR and it broke.
source "$(dirname "$0")/lib.sh"

require_lvs_bins
lab_start --method nat
tmp=$(e2e_tmpdir)
want=$(cat "$LAB_STATE/big.sha256")

# 4 MB paced by nginx at 400 KB/s (about 10 s); a small client receive buffer keeps the data on the
# wire, through lvsd, for that long.
lab_exec client sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
setsid ip netns exec "$LAB_PREFIX-client" timeout 75 curl -sS --max-time 60 \
    -o "$tmp/big" -w '%{http_code} %{size_download}' "http://$VIP/slow/big?rate=400k" >"$tmp/dl.out" 2>"$tmp/dl.err" </dev/null &
dl=$!
e2e_on_exit kill_quiet "$dl"
established() { lab_lvsadm -Lnc | awk '$1=="TCP" && $3=="ESTABLISHED" && $5=="192.168.1.100:80" {found=1} END {exit !found}'; }
wait_for 10 "the download's ESTABLISHED entry" established >/dev/null
sleep 1
kill -0 "$dl" 2>/dev/null || e2e_fail "the download ended before the edit: $(cat "$tmp/dl.out" "$tmp/dl.err")"

for rip in 10.0.0.31 10.0.0.32; do
    lab_lvsadm -e -t "$VIP:80" -r "$rip:80" -g || e2e_fail "lvsadm -e ... -g failed for $rip"
done
list=$(lab_lvsadm -Ln) || e2e_fail "lvsadm -Ln failed"
echo "$list"
[[ $(grep -c "10\.0\.0\.3[12]:80 *Route" <<<"$list") == 2 ]] || e2e_fail "-Ln does not list both servers as Route after the edit"

# A new connection is DR now: the real servers hold no VIP, so it gets no answer.
if out=$(lab_exec client curl -sS --max-time 3 "http://$VIP/" 2>&1); then
    e2e_fail "a new connection after the edit to -g was answered (it should be DR, unanswerable on this lab): $out"
fi
e2e_log "ok: a new connection after the edit is DR (no answer on the NAT lab: ${out//$'\n'/ })"

wait "$dl" || true

result=$(cat "$tmp/dl.out")
got=$(sha256sum "$tmp/big" 2>/dev/null | cut -d' ' -f1)
if [[ $result != "200 4194304" || $got != "$want" ]]; then
    lab_lvsadm -Lnc >&2 || true
    lab_lvsadm -Ln --stats >&2 || true
    cat "$tmp/dl.err" >&2
    e2e_fail "the download through the edit is not intact: curl said '$result', sha256 $got (want $want)"
fi
e2e_log "ok: the live NAT download kept its method through the edit to -g and arrived intact (4 MB, sha256 matches)"

for rip in 10.0.0.31 10.0.0.32; do
    lab_lvsadm -e -t "$VIP:80" -r "$rip:80" -m || e2e_fail "lvsadm -e ... -m failed for $rip"
done
answers=()
for _ in 1 2; do answers+=("$(curl_rs "http://$VIP/")"); done
e2e_log "answers after the edit back to -m: ${answers[*]}"
[[ ${answers[0]} =~ ^0[12]$ && ${answers[1]} =~ ^0[12]$ ]] || e2e_fail "new connections after the edit back to -m: ${answers[*]}"
e2e_log "PASS"
