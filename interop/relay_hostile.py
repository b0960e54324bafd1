#!/usr/bin/env python3
"""Hostile peers on both legs of a relay (loopback only).

  relay_hostile.py PORTFORWARD RUNTIME BOUND_KIB

Starts an upstream server and `PORTFORWARD --runtime RUNTIME --upstream <it>`, then:
  client-reset    the client resets mid-write: the upstream's end must end within 3 s;
  upstream-reset  the upstream resets while the client writes: the client's end must end
                  within 3 s;
  never-reads     the upstream floods a client that never reads, for 3 s: the relay's RSS must
                  grow by at most BOUND_KIB; then the client leaves and the upstream's end must
                  end within 3 s.
After all three, the relay's descriptors must be back at their baseline. Exit 0 when all hold.
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def ends_within(sock, seconds):
    """True when the peer ends the connection (EOF, reset or a failed send) in time."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(1 << 16) == b"":
                return True
        except socket.timeout:
            try:
                sock.send(b"?")
            except OSError:
                return True
        except OSError:
            return True
    return False


def flood(sock, stop):
    """Writes until told to stop or the connection fails; a blocked write re-checks `stop`."""
    chunk = b"f" * (1 << 16)
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            sock.sendall(chunk)
        except socket.timeout:
            continue
        except OSError:
            return


def main(portforward, runtime, bound_kib):
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
    ok = True
    try:
        host, port = relay.stdout.readline().split()[3].rsplit(":", 1)
        target = (host, int(port))
        time.sleep(0.3)
        fds_before = fds(relay.pid)

        # 1. The client resets mid-write.
        client = socket.create_connection(target)
        far, _ = sink.accept()
        stop = threading.Event()
        writer = threading.Thread(target=flood, args=(client, stop))
        writer.start()
        far.recv(1 << 16)
        time.sleep(0.2)
        stop.set()
        writer.join()
        reset(client)
        ended = ends_within(far, 3)
        far.close()
        print("client-reset (%s): upstream end %s" % (runtime, "ended" if ended else "STILL OPEN"))
        ok &= ended

        # 2. The upstream resets while the client writes.
        client = socket.create_connection(target)
        far, _ = sink.accept()
        stop = threading.Event()
        writer = threading.Thread(target=flood, args=(client, stop))
        writer.start()
        far.recv(1 << 16)
        reset(far)
        writer.join(3)
        ended = not writer.is_alive() or ends_within(client, 3)
        stop.set()
        writer.join()
        client.close()
        print("upstream-reset (%s): client end %s" % (runtime, "ended" if ended else "STILL OPEN"))
        ok &= ended

        # 3. A client that never reads, flooded by the upstream.
        time.sleep(0.3)
        baseline = rss_kib(relay.pid)
        client = socket.create_connection(target)
        far, _ = sink.accept()
        stop = threading.Event()
        writer = threading.Thread(target=flood, args=(far, stop))
        writer.start()
        peak = baseline
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(relay.pid))
            time.sleep(0.01)
        client.close()
        writer.join(3)
        ended = not writer.is_alive() or ends_within(far, 3)
        stop.set()
        writer.join()
        far.close()
        growth = peak - baseline
        print("never-reads (%s): RSS growth %d KiB over 3 s of flooding (bound %d KiB); upstream end %s"
              % (runtime, growth, bound_kib, "ended" if ended else "STILL OPEN"))
        ok &= ended and growth <= bound_kib

        fds_after = fds(relay.pid)
        for _ in range(100):
            if fds_after <= fds_before:
                break
            time.sleep(0.05)
            fds_after = fds(relay.pid)
        print("relay descriptors (%s): %d before, %d after" % (runtime, fds_before, fds_after))
        ok &= fds_after <= fds_before
        return 0 if ok else 1
    finally:
        relay.terminate()
        relay.wait()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
