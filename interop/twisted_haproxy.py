#!/usr/bin/env python3
"""Twisted's PROXY protocol receiver (its `haproxy` server endpoint) for interop.

  twisted_haproxy.py server   listens on `haproxy:tcp:0:interface=127.0.0.1`; prints
                              "listening on tcp 127.0.0.1:PORT"; on each connection writes
                              "you are IP:PORT\\r\\n" with the peer Twisted's wrapper reports
                              (the address in the PROXY header), then echoes.
"""
import sys

from twisted.internet import endpoints, protocol, reactor


class Announce(protocol.Protocol):
    def connectionMade(self):
        # Twisted's wrapper only knows the real peer once the header is parsed, which is
        # after connectionMade (the fault loomwork's AcceptProxy avoids): announce on the
        # first data instead.
        self.announced = False

    def dataReceived(self, data):
        if not self.announced:
            self.announced = True
            peer = self.transport.getPeer()
            self.transport.write(("you are %s:%d\r\n" % (peer.host, peer.port)).encode())
        self.transport.write(data)


def main():
    factory = protocol.Factory.forProtocol(Announce)
    endpoint = endpoints.serverFromString(reactor, "haproxy:tcp:0:interface=127.0.0.1")

    def listening(port):
        address = port.getHost()
        print("listening on tcp %s:%d" % (address.host, address.port), flush=True)

    endpoint.listen(factory).addCallback(listening)
    reactor.run()


if __name__ == "__main__":
    if sys.argv[1:] != ["server"]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main()
