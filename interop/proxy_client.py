#!/usr/bin/env python3
"""PROXY protocol interop helper (loopback only), plain sockets so it checks bytes exactly.

  proxy_client.py announce HOST:PORT SOURCE_IP   connects from SOURCE_IP (a loopback address
        such as 127.0.0.2), reads the server's `you are IP:PORT` line, checks an echo, and
        prints `client SOURCE_IP:LOCALPORT server-saw IP:PORT`; exit 0 when they are equal.
  proxy_client.py refused HOST:PORT              sends a request with no PROXY header; exit 0
        when the server closes without echoing anything.
  proxy_client.py stalled HOST:PORT SECONDS      sends half a header and stops; exit 0 when the
        server closes the connection within SECONDS (the header timeout evicts it).
  proxy_client.py bulk HOST:PORT MIB              sends MIB MiB to an echo server (through a
        relay), half-closes, and checks the echo byte for byte (SHA-256) and the EOF after it.
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
    # Sent first: Twisted's receiver announces only once data arrives.
    sock.sendall(b"ping")
    got = b""
    while (b"\r\n" not in got or len(got.split(b"\r\n", 1)[1]) < 4) and len(got) < 300:
        chunk = sock.recv(300)
        if not chunk:
            break
        got += chunk
    sock.close()
    line, _, echo = got.partition(b"\r\n")
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


def bulk(target, mib):
    import hashlib
    import threading

    payload = bytes(range(256)) * (4096 * mib)
    sock = connect(target)
    sock.settimeout(60)

    def writer():
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=writer)
    thread.start()
    digest, count = hashlib.sha256(), 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        digest.update(chunk)
        count += len(chunk)
    thread.join()
    ok = count == len(payload) and digest.digest() == hashlib.sha256(payload).digest()
    print("bulk: sent %d bytes, got %d back then EOF, checksum %s" % (len(payload), count, "ok" if ok else "MISMATCH"))
    return 0 if ok else 1


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
    if mode == "bulk":
        return bulk(target, int(argv[3]))
    if mode == "send":
        return send(target, argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
