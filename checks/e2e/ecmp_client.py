# The client side of the ECMP tests (checks/e2e/test_ecmp_*.sh), run in the lab's client namespace.
#
#   ecmp_client.py spread VIP COUNT SRC...      COUNT requests (GET /), source addresses in turn,
#                                               ephemeral ports; prints "answers rs01=N rs02=N failed=N"
#                                               and up to 5 "error ..." lines
#   ecmp_client.py tuples VIP FILE              one request per line "SRC SPORT" of FILE, from exactly
#                                               that address and port; prints "SRC SPORT RS" (RS: 01,
#                                               02 or ERR); each connection ends with an RST (SO_LINGER
#                                               0), so the same tuple can be used again at once
#
# Every connection has a timeout (TIMEOUT_S); nothing here waits without one.
import re
import socket
import struct
import sys
import threading

TIMEOUT_S = 3.0
WORKERS = 16
PORT = 80
ANSWER = re.compile(rb"Real Server (0[12])")


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def request(vip, src, sport, reset):
    """One GET / from (src, sport); returns '01', '02' or 'ERR:reason'."""
    s = socket.socket(family(vip), socket.SOCK_STREAM)
    try:
        s.settimeout(TIMEOUT_S)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport))
        s.connect((vip, PORT))
        s.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        m = ANSWER.search(data)
        return m.group(1).decode() if m else "ERR:unexpected-answer"
    except OSError as e:
        return "ERR:%s" % (e.strerror or type(e).__name__).replace(" ", "_")
    finally:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def run_parallel(jobs, work):
    """Runs work(job) for every job on WORKERS threads; returns the results in job order."""
    results = [None] * len(jobs)
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(jobs):
                return
            results[i] = work(jobs[i])

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def spread(vip, count, sources):
    jobs = [sources[i % len(sources)] for i in range(count)]
    results = run_parallel(jobs, lambda src: request(vip, src, 0, False))
    n1 = results.count("01")
    n2 = results.count("02")
    errors = [r for r in results if r.startswith("ERR")]
    print("answers rs01=%d rs02=%d failed=%d" % (n1, n2, len(errors)))
    for e in errors[:5]:
        print("error %s" % e)


def tuples(vip, path):
    with open(path) as f:
        jobs = [(a, int(p)) for a, p in (line.split() for line in f if line.strip())]
    results = run_parallel(jobs, lambda job: request(vip, job[0], job[1], True))
    for (src, sport), r in zip(jobs, results):
        print("%s %d %s" % (src, sport, r))


def main():
    mode = sys.argv[1]
    if mode == "spread":
        spread(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif mode == "tuples":
        tuples(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: ecmp_client.py spread VIP COUNT SRC... | tuples VIP FILE")


if __name__ == "__main__":
    main()
