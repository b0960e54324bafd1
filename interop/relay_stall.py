#!/usr/bin/env python3
"""Memory bound of a relay under a stalling reader (loopback only).

  relay_stall.py PORTFORWARD RUNTIME MIB BOUND_KIB [up|down]

Starts an upstream server, then `PORTFORWARD --runtime RUNTIME --upstream <it>`; warms the
relay up with one small relay; then MIB MiB go through it while the reader reads in bursts of
32 MiB with 0.25 s stalls in between: `up` (default) the client pushes and the upstream reads,
`down` the upstream pushes and the client reads. The relay's RSS (/proc/PID/status VmRSS) is
sampled every 10 ms. Checks: every byte arrived in order (SHA-256), and the RSS grew by at most
BOUND_KIB over its warmed-up baseline. Prints the figures; exit 0 when both hold.
"""
import hashlib
import socket
import subprocess
import sys
import threading
import time

CHUNK = 1 << 20
BURST = 32 << 20
STALL = 0.25


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main(portforward, runtime, mib, bound_kib, direction):
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    upstream = "127.0.0.1:%d" % sink.getsockname()[1]
    relay = subprocess.Popen(
        [portforward, "--runtime", runtime, "--listen", "127.0.0.1:0", "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = relay.stdout.readline()
        host, port = line.split()[3].rsplit(":", 1)
        target = (host, int(port))

        # Warm-up: one small relay, so lazily built runtime state is in the baseline.
        warm = socket.create_connection(target)
        warm.sendall(b"x" * 65536)
        conn, _ = sink.accept()
        got = 0
        while got < 65536:
            got += len(conn.recv(65536))
        warm.close()
        conn.close()
        time.sleep(0.5)
        baseline = rss_kib(relay.pid)

        payload = bytes(range(256)) * (CHUNK // 256)
        total = mib * CHUNK
        peak = [baseline]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(relay.pid))
                time.sleep(0.01)

        def push(sock):
            for _ in range(mib):
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        client = socket.create_connection(target)
        upstream_end, _ = sink.accept()
        writer, reader = (client, upstream_end) if direction == "up" else (upstream_end, client)
        pusher = threading.Thread(target=push, args=(writer,))
        pusher.start()
        digest, received, since_stall = hashlib.sha256(), 0, 0
        buf = bytearray(CHUNK)
        stalls = 0
        while True:
            n = reader.recv_into(buf)
            if n == 0:
                break
            digest.update(memoryview(buf)[:n])
            received += n
            since_stall += n
            if since_stall >= BURST:
                since_stall = 0
                stalls += 1
                time.sleep(STALL)
        pusher.join()
        client.close()
        upstream_end.close()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        expected = hashlib.sha256()
        for _ in range(mib):
            expected.update(payload)
        intact = received == total and digest.digest() == expected.digest()
        growth = peak[0] - baseline
        print(
            "relay (%s, %s): %d MiB through a reader that stalled %d times (%.1f s): %s; "
            "RSS %d KiB warmed up, peak %d KiB, growth %d KiB (bound %d KiB)"
            % (runtime, direction, received >> 20, stalls, elapsed, "every byte in order" if intact else "DATA MISMATCH",
               baseline, peak[0], growth, bound_kib)
        )
        return 0 if intact and growth <= bound_kib else 1
    finally:
        relay.terminate()
        relay.wait()


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    direction = sys.argv[5] if len(sys.argv) == 6 else "up"
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), direction))
