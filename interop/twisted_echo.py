#!/usr/bin/env python3
"""Echo interop with real Twisted.

  twisted_echo.py client HOST:PORT   Twisted's echo client against any echo server: sends a
                                     message and a 1 MiB payload, checks the echoes, exits 0/1.
  twisted_echo.py server             Twisted's Echo server on 127.0.0.1:0; prints
                                     "listening on tcp 127.0.0.1:PORT" and serves until killed.
"""
import hashlib
import sys

from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Checker(protocol.Protocol):
    """Sends `payload`, expects it back byte for byte, then closes."""

    def __init__(self, payload):
        self.payload = payload
        self.got = bytearray()

    def connectionMade(self):
        self.transport.write(self.payload)

    def dataReceived(self, data):
        self.got += data
        if len(self.got) >= len(self.payload):
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self.factory.results.append(bytes(self.got) == self.payload)
        self.factory.pending -= 1
        if self.factory.pending == 0:
            reactor.stop()


class CheckerFactory(protocol.ClientFactory):
    def __init__(self, payloads):
        self.payloads = list(payloads)
        self.pending = len(self.payloads)
        self.results = []

    def buildProtocol(self, addr):
        p = Checker(self.payloads.pop(0))
        p.factory = self
        return p

    def clientConnectionFailed(self, connector, reason):
        print("Connection failed:", reason.getErrorMessage(), file=sys.stderr)
        self.results.append(False)
        self.pending -= 1
        if self.pending == 0:
            reactor.stop()


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
        print(f"listening on tcp 127.0.0.1:{port.getHost().port}", flush=True)
        reactor.run()
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "client":
        host, port = sys.argv[2].rsplit(":", 1)
        payloads = [b"Hello, world!", bytes(range(256)) * 4096, b""]
        payloads = [p for p in payloads if p]
        factory = CheckerFactory(payloads)
        for _ in payloads:
            reactor.connectTCP(host, int(port), factory, timeout=10)
        reactor.callLater(30, reactor.stop)
        reactor.run()
        ok = len(factory.results) == len(payloads) and all(factory.results)
        digest = hashlib.sha256(b"".join(payloads)).hexdigest()[:12]
        print(f"twisted client: {sum(factory.results)}/{len(payloads)} echoes intact (sha256 {digest})")
        return 0 if ok else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
