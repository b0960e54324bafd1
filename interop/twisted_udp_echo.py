"""The seed's UDP Echo server on Twisted, printing the loomwork `listening on` line."""
import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol


class Echo(DatagramProtocol):
    def datagramReceived(self, data, addr):
        print("received %r from %s" % (data, addr), file=sys.stderr, flush=True)
        self.transport.write(data, addr)


port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
print("listening on udp 127.0.0.1:%d" % port.getHost().port, flush=True)
reactor.run()
