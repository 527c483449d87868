#!/usr/bin/env python3
"""Keep-alive HTTP loop for the HA tests: one HTTP/1.1 connection to URL, a GET every 50 ms
with a TIMEOUT_S timeout (default 10 s: longer than a takeover, so a request that TCP carries
across the failover by retransmission counts as answered, late; the stall shows as the gap),
a new connection after any failure; runs while RUN_FILE exists (at most 120 s). Prints one
line per request: START_MS END_MS ok|ERR:WHY CONNECTION_NUMBER.

    ha_probe.py URL RUN_FILE [TIMEOUT_S]
"""
import http.client, os, sys, time, urllib.parse

INTERVAL_S = 0.05
TIMEOUT_S = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
LIMIT_S = 120

url = urllib.parse.urlsplit(sys.argv[1])
run_file = sys.argv[2]
host = url.hostname
path = url.path or "/"
conn = None
conns = 0
deadline = time.monotonic() + LIMIT_S


def now_ms():
    return int(time.time() * 1000)


while os.path.exists(run_file) and time.monotonic() < deadline:
    start = now_ms()
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, url.port or 80, timeout=TIMEOUT_S)
            conns += 1
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        result = "ok" if resp.status == 200 and b"Real Server" in body else "ERR:status-%d" % resp.status
    except Exception as e:  # any failure: count it, reconnect
        result = "ERR:" + type(e).__name__
        if conn is not None:
            conn.close()
        conn = None
    print(start, now_ms(), result, conns, flush=True)
    time.sleep(INTERVAL_S)
if conn is not None:
    conn.close()
