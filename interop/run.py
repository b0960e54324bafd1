#!/usr/bin/env python3
"""Interop between loomwork's datagram examples and the real Twisted seed programs.

    python3 interop/run.py            # UDP echo / connected Helloer, both directions
    sudo python3 interop/run.py --multicast
                                      # also multicast, inside a private network namespace

Loopback only; multicast re-runs this script under `unshare -n` with scripts/netns-setup.sh.
Build the examples first (`cargo build --examples`); LOOMWORK_EXAMPLES overrides their folder.
Exits non-zero on the first mismatch.
"""
import os
import signal
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "interop")
EXAMPLES = os.environ.get("LOOMWORK_EXAMPLES", os.path.join(ROOT, "target", "debug", "examples"))
RUNTIMES = ["std", "smol", "tokio"]
failures = []


def ours(name, *args):
    return [os.path.join(EXAMPLES, name), *args]


def twisted(script, *args):
    return [sys.executable, os.path.join(HERE, script), *args]


def start_server(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on udp "):
        proc.kill()
        raise SystemExit("server %s printed %r" % (argv, line))
    return proc, line.rsplit(" ", 1)[1]


def stop_server(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def check(name, argv, expected_lines, expected_code):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    lines = done.stdout.splitlines()
    ok = lines == expected_lines and done.returncode == expected_code
    print("%-4s %s" % ("ok" if ok else "FAIL", name))
    if not ok:
        failures.append(name)
        print("     expected %r exit %d\n     got      %r exit %d %s"
              % (expected_lines, expected_code, lines, done.returncode, done.stderr.strip()))


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unicast():
    # Our Helloer against Twisted's Echo.
    proc, addr = start_server(twisted("twisted_udp_echo.py"))
    for rt in RUNTIMES:
        check("loomwork udp_helloer (%s) -> Twisted Echo" % rt,
              ours("udp_helloer", "--connect", addr, "--runtime", rt),
              ["we can only send to %s now" % addr, "received hello from %s" % addr], 0)
    stop_server(proc)
    # Twisted's Helloer (select reactor) against our Echo.
    for rt in RUNTIMES:
        proc, addr = start_server(ours("udp_echo", "--listen", "127.0.0.1:0", "--runtime", rt))
        host, port = addr.rsplit(":", 1)
        check("Twisted Helloer -> loomwork udp_echo (%s)" % rt,
              twisted("twisted_helloer.py", host, port),
              ["we can only send to %s now" % addr, "received hello from %s" % addr], 0)
        stop_server(proc)
    # Refusal: both say the same thing.
    port = closed_port()
    target = "127.0.0.1:%d" % port
    expected = ["we can only send to %s now" % target, "No one listening"]
    check("Twisted Helloer -> closed port", twisted("twisted_helloer.py", "127.0.0.1", str(port)), expected, 1)
    for rt in RUNTIMES:
        check("loomwork udp_helloer (%s) -> closed port" % rt,
              ours("udp_helloer", "--connect", target, "--runtime", rt), expected, 1)


def multicast():
    group, port = "239.1.2.3", str(closed_port())
    servers = [
        ("Twisted", start_server(twisted("twisted_multicast.py", "server", group, port))[0]),
    ] + [
        ("loomwork " + rt,
         start_server(ours("multicast_server", "--group", group, "--port", port, "--runtime", rt))[0])
        for rt in RUNTIMES
    ]
    # One answer per server; each server hears Twisted's client and one of ours per runtime.
    answers = ["Received: data"] * len(servers)
    ours_label = "Twisted + loomwork %s servers" % " + ".join(RUNTIMES)
    check("Twisted multicast client -> " + ours_label,
          twisted("twisted_multicast.py", "client", group, port), answers, 0)
    for rt in RUNTIMES:
        check("loomwork multicast_client (%s) -> %s" % (rt, ours_label),
              ours("multicast_client", "--group", group, "--port", port, "--runtime", rt), answers, 0)
    clients = 1 + len(RUNTIMES)
    for label, proc in servers:
        out = stop_server(proc)
        name = "%s multicast server answered all %d clients" % (label, clients)
        ok = out.count("Server Received: UniqueID") == clients
        print("%-4s %s" % ("ok" if ok else "FAIL", name))
        if not ok:
            failures.append(name)


def main():
    if "--in-netns" in sys.argv:
        subprocess.run(["sh", os.path.join(ROOT, "scripts", "netns-setup.sh")], check=True)
        multicast()
        sys.exit(1 if failures else 0)
    else:
        unicast()
        if "--multicast" in sys.argv:
            code = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--in-netns"]).returncode
            if code != 0:
                failures.append("multicast (in a private network namespace)")
    if failures:
        print("%d interop check(s) failed" % len(failures))
        sys.exit(1)
    print("all interop checks passed")


main()
