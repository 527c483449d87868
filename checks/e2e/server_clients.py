#!/usr/bin/env python3
"""Badly behaved clients of lvsd's control socket and metrics endpoint (e2e tests).

  abort-control SOCKET N          N times: connect, send a -Lnc request, close at once
  abort-metrics HOST PORT N       N times: connect, send GET /metrics, reset (SO_LINGER 0)
  hold-control SOCKET SILENT NONREADING SECONDS
  hold-metrics HOST PORT SILENT NONREADING SECONDS
                                  SILENT clients connect and send nothing; NONREADING clients
                                  send requests until their socket is full and never read (on
                                  the control socket: -Ln and -Lnc requests, by turns); all
                                  are held SECONDS (or until the file in $HOLD_STOP exists),
                                  then closed. Prints "holding S+N" once all are set up.
  oversized-control SOCKET BYTES  sends BYTES without a newline; prints what lvsd answered
  oversized-metrics HOST PORT BYTES
                                  sends a header of BYTES; prints the status line answered

Every socket operation has a timeout; exit status 0 unless the setup itself failed.
"""
import os
import socket
import struct
import sys
import time

LIST_REQUEST = b'{"request":"connections","version":1}\n'
SNAPSHOT_REQUEST = b'{"request":"snapshot","version":1}\n'
GET = b"GET /metrics HTTP/1.1\r\nHost: lvsd\r\n\r\n"
TIMEOUT = 5.0


def unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A blocking connect waits while lvsd's accept queue is full, as lvsadm's does (the test
    # bounds the whole run); a non-blocking one would fail with EAGAIN instead.
    s.connect(path)
    s.settimeout(TIMEOUT)
    return s


def tcp(host, port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect((host, int(port)))
    return s


def abort_control(path, n):
    done = 0
    for _ in range(n):
        s = unix(path)
        s.sendall(LIST_REQUEST)
        s.close()
        done += 1
    print(f"aborted {done}")


def abort_metrics(host, port, n):
    done = 0
    for _ in range(n):
        s = tcp(host, port)
        s.sendall(GET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        done += 1
    print(f"aborted {done}")


def fill(s, request, limit=64 << 20):
    """Sends `request` until the socket cannot take more (the peer's answers pile up unread)."""
    s.setblocking(False)
    sent = 0
    stalled_since = None
    while sent < limit:
        try:
            sent += s.send(request)
            stalled_since = None
        except BlockingIOError:
            # Full: give lvsd a moment to read what it can, then try again.
            now = time.monotonic()
            if stalled_since is None:
                stalled_since = now
            elif now - stalled_since > 1.0:
                break
            time.sleep(0.05)
        except OSError:
            break  # lvsd closed it (a limit): fine, it is not held up either way
    return sent


def hold(make, requests, silent, nonreading, seconds):
    held = [make() for _ in range(silent)]
    for i in range(nonreading):
        s = make(small=True)
        fill(s, requests[i % len(requests)])
        held.append(s)
    print(f"holding {silent}+{nonreading}", flush=True)
    stop = os.environ.get("HOLD_STOP")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (stop and os.path.exists(stop)):
        time.sleep(0.1)
    for s in held:
        s.close()


def oversized_control(path, size):
    s = unix(path)
    chunk = b"x" * 65536
    try:
        sent = 0
        while sent < size:
            sent += s.send(chunk)
    except OSError:
        pass
    try:
        answer = s.recv(4096)
    except OSError as e:
        answer = f"recv failed: {e}".encode()
    print(answer.decode(errors="replace").strip())


def oversized_metrics(host, port, size):
    s = tcp(host, port)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"y" * size + b"\r\n\r\n")
    except OSError:
        pass
    try:
        answer = s.recv(4096)
    except OSError as e:
        answer = f"recv failed: {e}".encode()
    print(answer.decode(errors="replace").split("\r\n")[0])


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    a = argv[2:]
    if cmd == "abort-control":
        abort_control(a[0], int(a[1]))
    elif cmd == "abort-metrics":
        abort_metrics(a[0], a[1], int(a[2]))
    elif cmd == "hold-control":
        def make(small=False):
            s = unix(a[0])
            if small:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            return s
        hold(make, [SNAPSHOT_REQUEST, LIST_REQUEST], int(a[1]), int(a[2]), float(a[3]))
    elif cmd == "hold-metrics":
        hold(lambda small=False: tcp(a[0], a[1], 2048 if small else None), [GET * 64], int(a[2]), int(a[3]), float(a[4]))
    elif cmd == "oversized-control":
        oversized_control(a[0], int(a[1]))
    elif cmd == "oversized-metrics":
        oversized_metrics(a[0], a[1], int(a[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
