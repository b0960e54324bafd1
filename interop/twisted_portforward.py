#!/usr/bin/env python3
"""Twisted's own relay, `twisted.protocols.portforward`, for side-by-side runs.

  twisted_portforward.py UPSTREAM_HOST:PORT   listens on 127.0.0.1:0, prints
                                              "listening on tcp 127.0.0.1:PORT", relays each
                                              connection to the upstream until killed.
"""
import sys

from twisted.internet import reactor
from twisted.protocols import portforward


def main(upstream):
    host, port = upstream.rsplit(":", 1)
    listening = reactor.listenTCP(0, portforward.ProxyFactory(host, int(port)), interface="127.0.0.1")
    address = listening.getHost()
    print("listening on tcp %s:%d" % (address.host, address.port), flush=True)
    reactor.run()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
