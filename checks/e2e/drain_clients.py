#!/usr/bin/env python3
"""Keep-alive HTTP clients for the drain test: N threads, each holding one HTTP/1.1 connection
to URL for LIFETIME_S (spread from 0.5x to 1.5x over the clients) with a GET every 100 ms, then
closing it and opening the next, as browsers and pools do; they run while RUN_FILE exists (at
most 180 s). Every socket operation has a 10 s timeout. Writes one line per connection:

    conn CLIENT START_MS END_MS SERVER REQUESTS     (SERVER: 01 or 02 from the bodies, ?? none)

and one line per failed request: fail CLIENT MS WHY SERVER_OF_THE_CONNECTION.

    drain_clients.py URL N LIFETIME_S RUN_FILE
"""
import http.client
import os
import sys
import threading
import time
import urllib.parse

INTERVAL_S = 0.1
TIMEOUT_S = 10.0
LIMIT_S = 180

url = urllib.parse.urlsplit(sys.argv[1])
clients = int(sys.argv[2])
lifetime = float(sys.argv[3])
run_file = sys.argv[4]
deadline = time.monotonic() + LIMIT_S
out_lock = threading.Lock()


def now_ms():
    return int(time.time() * 1000)


def emit(line):
    with out_lock:
        print(line, flush=True)


def client(index):
    life = lifetime * (0.5 + index / max(1, clients))
    while os.path.exists(run_file) and time.monotonic() < deadline:
        start = now_ms()
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=TIMEOUT_S)
        server = "??"
        requests = 0
        end_at = time.monotonic() + life
        while time.monotonic() < end_at and os.path.exists(run_file):
            try:
                conn.request("GET", url.path or "/")
                resp = conn.getresponse()
                body = resp.read()
                requests += 1
                if resp.status != 200 or b"Real Server" not in body:
                    emit("fail %d %d status-%d %s" % (index, now_ms(), resp.status, server))
                else:
                    server = body.split(b"Real Server ", 1)[1][:2].decode()
            except Exception as e:  # a failed request: counted, and a new connection
                emit("fail %d %d %s %s" % (index, now_ms(), type(e).__name__, server))
                break
            time.sleep(INTERVAL_S)
        end = now_ms()
        conn.close()
        emit("conn %d %d %d %s %d" % (index, start, end, server, requests))


threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
