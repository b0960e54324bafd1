"""The seed's connected-UDP Helloer on Twisted, with the select reactor (Twisted CU-4:
only that reactor delivers connectionRefused on Linux). Usage: twisted_helloer.py HOST PORT"""
import sys

from twisted.internet import selectreactor

selectreactor.install()
from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import DatagramProtocol  # noqa: E402

outcome = {"code": 1}


class Helloer(DatagramProtocol):
    def __init__(self, host, port):
        self.host, self.port = host, port

    def startProtocol(self):
        self.transport.connect(self.host, self.port)
        print("we can only send to %s:%d now" % (self.host, self.port), flush=True)
        self.transport.write(b"hello")
        reactor.callLater(2, self.noReply)

    def datagramReceived(self, data, addr):
        print("received %s from %s:%d" % (data.decode("utf-8", "replace"), addr[0], addr[1]), flush=True)
        outcome["code"] = 0
        reactor.stop()

    def connectionRefused(self):
        print("No one listening", flush=True)
        reactor.stop()

    def noReply(self):
        print("no reply", flush=True)
        reactor.stop()


reactor.listenUDP(0, Helloer(sys.argv[1], int(sys.argv[2])))
reactor.run()
sys.exit(outcome["code"])
