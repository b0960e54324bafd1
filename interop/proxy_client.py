#!/usr/bin/env python3
"""PROXY protocol interop helper (loopback only), plain sockets so it checks bytes exactly.

  proxy_client.py announce HOST:PORT SOURCE_IP   connects from SOURCE_IP (a loopback address
        such as 127.0.0.2), reads the server's `you are IP:PORT` line, checks an echo, and
        prints `client SOURCE_IP:LOCALPORT server-saw IP:PORT`; exit 0 when they are equal.
  proxy_client.py refused HOST:PORT              sends a request with no PROXY header; exit 0
        when the server closes without echoing anything.
  proxy_client.py stalled HOST:PORT SECONDS      sends half a header and stops; exit 0 when the
        server closes the connection within SECONDS (the header timeout evicts it).
  proxy_client.py send HOST:PORT HEADER_HEX      sends a header (hex), then `ping`, and prints
        what comes back until the server closes.
"""
import socket
import sys
import time


def connect(target, source=None):
    host, port = target.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    if source:
        sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((host.strip("[]"), int(port)))
    return sock


def read_until_closed(sock, limit=1 << 16):
    got = b""
    while len(got) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def announce(target, source):
    sock = connect(target, source)
    local = "%s:%d" % sock.getsockname()[:2]
    line = b""
    while not line.endswith(b"\r\n") and len(line) < 200:
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    sock.sendall(b"ping")
    echo = b""
    while len(echo) < 4:
        chunk = sock.recv(4 - len(echo))
        if not chunk:
            break
        echo += chunk
    sock.close()
    seen = line.decode(errors="replace").strip().removeprefix("you are ")
    print("client %s server-saw %s echo %r" % (local, seen, echo))
    return 0 if seen == local and echo == b"ping" else 1


def refused(target):
    sock = connect(target)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    try:
        got = read_until_closed(sock)
    except ConnectionResetError:
        got = b""
    print("header-less connection: server sent %r and closed" % got)
    return 0 if got == b"" else 1


def stalled(target, seconds):
    sock = connect(target)
    sock.settimeout(seconds + 5)
    sock.sendall(b"PROXY TCP4 192.0.2.1")
    start = time.monotonic()
    try:
        got = read_until_closed(sock)
    except ConnectionResetError:
        got = b""
    took = time.monotonic() - start
    print("stalled header: closed after %.1f s, server sent %r" % (took, got))
    return 0 if got == b"" and took <= seconds else 1


def send(target, header_hex):
    sock = connect(target)
    sock.sendall(bytes.fromhex(header_hex) + b"ping")
    sock.shutdown(socket.SHUT_WR)
    sys.stdout.write(read_until_closed(sock).decode(errors="replace"))
    return 0


def main(argv):
    mode, target = argv[1], argv[2]
    if mode == "announce":
        return announce(target, argv[3])
    if mode == "refused":
        return refused(target)
    if mode == "stalled":
        return stalled(target, float(argv[3]))
    if mode == "send":
        return send(target, argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
