#!/usr/bin/env python3
"""A graceful stop of a relay with a relay in progress (loopback only).

  relay_drain.py PORTFORWARD

On every runtime: a client relays 100,000 bytes to an upstream and keeps both connections
open; SIGINT to the relay must close both sides cleanly (an EOF on each; each then closes, as
a client does) and the relay must exit 0 reporting the relay drained, not aborted.
"""
import socket
import subprocess
import sys
import time


def main(portforward):
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    upstream = "127.0.0.1:%d" % sink.getsockname()[1]
    ok = True
    for runtime in ["std", "smol", "tokio"]:
        relay = subprocess.Popen(
            [portforward, "--runtime", runtime, "--listen", "127.0.0.1:0", "--upstream", upstream,
             "--drain-ms", "3000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        host, port = relay.stdout.readline().split()[3].rsplit(":", 1)
        client = socket.create_connection((host, int(port)))
        far, _ = sink.accept()
        for sock in (client, far):
            sock.settimeout(5)
        client.sendall(b"x" * 100000)
        got = 0
        while got < 100000:
            got += len(far.recv(65536))
        started = time.monotonic()
        relay.send_signal(2)
        ends = []
        for sock in (client, far):
            try:
                ends.append("EOF" if sock.recv(10) == b"" else "data")
            except OSError as err:
                ends.append(type(err).__name__)
            sock.close()
        code = relay.wait(10)
        took = time.monotonic() - started
        log = relay.stderr.read().strip()
        drained = "stopped: 1 drained, 0 aborted" in log
        print("graceful stop (%s): exit %d in %.2f s; client %s, upstream %s; %s"
              % (runtime, code, took, ends[0], ends[1], log.splitlines()[-1] if log else "no log"))
        ok &= code == 0 and ends == ["EOF", "EOF"] and drained
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
