"""The seed's multicast ping-pong on Twisted.

    twisted_multicast.py server GROUP PORT   # prints `listening on udp 0.0.0.0:PORT`
    twisted_multicast.py client GROUP PORT   # prints `Received: data` per answer, 2 s
"""
import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol


class MulticastPingPong(DatagramProtocol):
    def __init__(self, group):
        self.group = group

    def startProtocol(self):
        self.transport.setTTL(5)
        d = self.transport.joinGroup(self.group)
        d.addCallback(lambda _: print("listening on udp 0.0.0.0:%d" % self.transport.getHost().port, flush=True))

    def datagramReceived(self, datagram, address):
        if datagram == b"UniqueID":
            print("Server Received: UniqueID", flush=True)
            self.transport.write(b"data", address)


class MulticastPingClient(DatagramProtocol):
    def __init__(self, group, port):
        self.group, self.port = group, port

    def startProtocol(self):
        self.transport.joinGroup(self.group)
        self.transport.write(b"UniqueID", (self.group, self.port))
        reactor.callLater(2, reactor.stop)

    def datagramReceived(self, datagram, address):
        print("Received: %s" % datagram.decode("utf-8", "replace"), flush=True)


role, group, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    reactor.listenMulticast(port, MulticastPingPong(group), listenMultiple=True)
else:
    reactor.listenMulticast(0, MulticastPingClient(group, port), listenMultiple=True)
reactor.run()
