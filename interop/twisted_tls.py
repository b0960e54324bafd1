#!/usr/bin/env python3
"""TLS interop with real Twisted (pyOpenSSL, `twisted[tls]`): the twins of loomwork's TLS
examples (docs/examples.md), printing the same lines they print.

  twisted_tls.py server --cert PEM --key PEM [--client-ca PEM]
      TLS echo (Twisted's echoserv_ssl.py) on 127.0.0.1:0: prints
      "listening on tls 127.0.0.1:PORT"; with --client-ca requires a client certificate from
      that CA and logs "client <CN>" to stderr per connection; a failed handshake is logged as
      "connection from IP:PORT failed: <why>". Serves until killed.
  twisted_tls.py client --connect ADDR --ca PEM [--server-name NAME] [--cert PEM --key PEM]
                        [--message TEXT] [--max-tls 1.2]
      TLS echo client verifying the server against --ca (name: --server-name, else the host
      of ADDR), at most TLS 1.2 with --max-tls 1.2; logs "negotiated <version>" to stderr:
      prints "Received: <text>" and exits 0 once the echo is back; else stderr
      "Connection failed: <why>" (handshake or verification) or "Connection lost: <why>", exit 1.
  twisted_tls.py starttls-server --cert PEM --key PEM
      Twisted's starttls_server.py as a line echo: prints "listening on tcp 127.0.0.1:PORT",
      "received: <line>" to stderr per line; answers STARTTLS with READY and calls
      transport.startTLS; echoes every other line. Serves until killed.
  twisted_tls.py starttls-client --connect ADDR --ca PEM [--server-name NAME]
      Twisted's starttls_client.py: sends "plain text" and "STARTTLS"; on READY calls
      transport.startTLS and sends "secure text"; prints "Received: <line>" per echo; exits 0
      once "secure text" came back over TLS.
  twisted_tls.py starttls-pipelined --connect ADDR --ca PEM [--server-name NAME]
      The same conversation, but the ClientHello leaves in the same write as STARTTLS, before
      READY (Python's ssl module: Twisted's client always waits for READY); the server must
      hand those bytes to TLS exactly.
"""
import argparse
import sys

from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import interfaces, protocol, reactor, ssl
from twisted.internet.error import ConnectionDone
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

TIMEOUT = 20


def read(path):
    with open(path, "rb") as f:
        return f.read()


def host_of(addr):
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


def common_name(transport):
    cert = transport.getPeerCertificate()
    if cert is None:
        return None
    names = cert.to_cryptography().subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else None


def why(reason):
    """A one-line description of a Failure (pyOpenSSL errors are lists of tuples)."""
    value = reason.value
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        return "TLS: " + "; ".join(e[-1] for e in value.args[0] if e)
    return reason.getErrorMessage()


def server_options(args):
    """CertificateOptions for our certificate, optionally requiring client certificates."""
    cert = ssl.PrivateCertificate.loadPEM(read(args.cert) + read(args.key))
    kwargs = {}
    if args.client_ca:
        kwargs = dict(verify=True, requireCertificate=True,
                      caCerts=[ssl.Certificate.loadPEM(read(args.client_ca)).original])
    return ssl.CertificateOptions(privateKey=cert.privateKey.original,
                                  certificate=cert.original, **kwargs)


def client_options(args):
    """optionsForClientTLS: verify the server's name against --ca, maybe present --cert."""
    host = args.server_name or host_of(args.connect)[0]
    extra = {}
    if getattr(args, "max_tls", None) == "1.2":
        extra["lowerMaximumSecurityTo"] = ssl.TLSVersion.TLSv1_2
    client_cert = None
    if args.cert:
        client_cert = ssl.PrivateCertificate.loadPEM(read(args.cert) + read(args.key))
    return ssl.optionsForClientTLS(host, trustRoot=ssl.Certificate.loadPEM(read(args.ca)),
                                   clientCertificate=client_cert,
                                   extraCertificateOptions=extra or None)


# --- TLS echo server -------------------------------------------------------------------------

@implementer(interfaces.IHandshakeListener)
class Echo(protocol.Protocol):
    handshook = False

    def handshakeCompleted(self):
        self.handshook = True
        name = common_name(self.transport)
        if name is not None and self.factory.require:
            print(f"client {name}", file=sys.stderr, flush=True)

    def dataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        if not self.handshook or not reason.check(ConnectionDone):
            peer = self.transport.getPeer()
            print(f"connection from {peer.host}:{peer.port} failed: {why(reason)}",
                  file=sys.stderr, flush=True)


def serve_tls(args):
    factory = protocol.Factory.forProtocol(Echo)
    factory.require = bool(args.client_ca)
    port = reactor.listenSSL(0, factory, server_options(args), interface="127.0.0.1")
    print(f"listening on tls 127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()
    return 0


# --- TLS echo client -------------------------------------------------------------------------

class Outcome:
    """How the one connection ended: the first word counts."""

    code = 1
    message = "Connection lost: ended without a result"
    finished = False

    def finish(self, code, message=None):
        if not self.finished:
            self.finished = True
            self.code, self.message = code, message
            reactor.stop()


@implementer(interfaces.IHandshakeListener)
class EchoClient(protocol.Protocol):
    def __init__(self, outcome, message):
        self.outcome, self.message = outcome, message
        self.got = b""
        self.handshook = False
        self.echoed = False

    def connectionMade(self):
        # Buffered by the TLS layer until the handshake is done.
        self.transport.write(self.message)

    def handshakeCompleted(self):
        self.handshook = True
        version = self.transport.getHandle().get_protocol_version_name()
        print(f"negotiated {version}", file=sys.stderr, flush=True)

    def dataReceived(self, data):
        self.got += data
        if len(self.got) >= len(self.message):
            print("Received: " + self.got.decode("utf-8", "replace"), flush=True)
            self.echoed = True
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.echoed:
            self.outcome.finish(0)
        elif not self.handshook or reason.check(SSL.Error):
            # No TLS session (or the peer refused ours right after it): the connection failed.
            self.outcome.finish(1, f"Connection failed: {why(reason)}")
        else:
            self.outcome.finish(1, f"Connection lost: {why(reason)}")


class OnceFactory(protocol.ClientFactory):
    def __init__(self, outcome, build):
        self.outcome, self.build = outcome, build

    def buildProtocol(self, addr):
        return self.build()

    def clientConnectionFailed(self, connector, reason):
        self.outcome.finish(1, f"Connection failed: {why(reason)}")


def run_client(args, build, tls):
    outcome = Outcome()
    host, port = host_of(args.connect)
    factory = OnceFactory(outcome, lambda: build(outcome))
    if tls:
        reactor.connectSSL(host, port, factory, client_options(args), timeout=10)
    else:
        reactor.connectTCP(host, port, factory, timeout=10)
    reactor.callLater(TIMEOUT, outcome.finish, 1, "Connection lost: timed out")
    reactor.run()
    if outcome.message:
        print(outcome.message, file=sys.stderr, flush=True)
    return outcome.code


def tls_client(args):
    message = args.message.encode()
    return run_client(args, lambda outcome: EchoClient(outcome, message), tls=True)


# --- STARTTLS --------------------------------------------------------------------------------

class StartTlsServer(LineReceiver):
    """Twisted's starttls_server.py, echoing every line but STARTTLS."""

    def lineReceived(self, line):
        print("received: " + line.decode("utf-8", "replace"), file=sys.stderr, flush=True)
        if line == b"STARTTLS":
            self.sendLine(b"READY")
            self.transport.startTLS(self.factory.options)
        else:
            self.sendLine(line)


def serve_starttls(args):
    factory = protocol.Factory.forProtocol(StartTlsServer)
    factory.options = server_options(args)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"listening on tcp 127.0.0.1:{port.getHost().port}", flush=True)
    reactor.run()
    return 0


class StartTlsClient(LineReceiver):
    """Twisted's starttls_client.py, waiting for the echo of "secure text" before closing."""

    def __init__(self, outcome, options):
        self.outcome, self.options = outcome, options
        self.switched = False
        self.done = False

    def connectionMade(self):
        self.sendLine(b"plain text")
        self.sendLine(b"STARTTLS")

    def lineReceived(self, line):
        if line == b"READY" and not self.switched:
            self.switched = True
            self.transport.startTLS(self.options)
            self.sendLine(b"secure text")
            return
        print("Received: " + line.decode("utf-8", "replace"), flush=True)
        if line == b"secure text" and self.switched:
            self.done = True
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.done:
            self.outcome.finish(0)
        elif self.switched:
            self.outcome.finish(1, f"Connection failed: {why(reason)}")
        else:
            self.outcome.finish(1, f"Connection lost: {why(reason)}")


def starttls_client(args):
    options = client_options(args)
    return run_client(args, lambda outcome: StartTlsClient(outcome, options), tls=False)


def starttls_pipelined(args):
    """STARTTLS without waiting for READY: the command and the ClientHello leave in one write.

    Twisted's startTLS cannot do this (its client must see READY first), so this peer is
    Python's own ssl module (OpenSSL) over memory BIOs and a blocking socket.
    """
    import socket
    import ssl as stdssl

    host, port = host_of(args.connect)
    context = stdssl.create_default_context(cafile=args.ca)
    incoming, outgoing = stdssl.MemoryBIO(), stdssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=args.server_name or host)
    sock = socket.create_connection((host, port), timeout=TIMEOUT)

    def pump():
        """Sends what TLS wrote; reads more for it. False at EOF."""
        pending = outgoing.read()
        if pending:
            sock.sendall(pending)
        data = sock.recv(65536)
        incoming.write(data)
        return bool(data)

    try:
        tls.do_handshake()
    except stdssl.SSLWantReadError:
        pass
    sock.sendall(b"plain text\r\nSTARTTLS\r\n" + outgoing.read())
    plain = b""
    while plain.count(b"\r\n") < 2:  # the echo of "plain text", then READY
        data = sock.recv(65536)
        if not data:
            print("Connection lost: closed before READY", file=sys.stderr)
            return 1
        plain += data
    first, ready, rest = plain.split(b"\r\n", 2)
    print("Received: " + first.decode("utf-8", "replace"), flush=True)
    if ready != b"READY":
        print(f"Connection lost: expected READY, got {ready!r}", file=sys.stderr)
        return 1
    incoming.write(rest)  # the server's first TLS bytes, if they came along
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except stdssl.SSLWantReadError:
                if not pump():
                    raise ConnectionError("EOF during the handshake")
        tls.write(b"secure text\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            try:
                got += tls.read(65536)
            except stdssl.SSLWantReadError:
                if not pump():
                    raise ConnectionError("EOF before the echo")
        print("Received: " + got[:-2].decode("utf-8", "replace"), flush=True)
        try:
            tls.unwrap()  # close_notify
        except stdssl.SSLWantReadError:
            pass
        sock.sendall(outgoing.read())
    except (stdssl.SSLError, ConnectionError, OSError) as e:
        print(f"Connection failed: {e}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("server", "starttls-server"):
        p = sub.add_parser(name)
        p.add_argument("--cert", required=True)
        p.add_argument("--key", required=True)
        if name == "server":
            p.add_argument("--client-ca")
        else:
            p.set_defaults(client_ca=None)
    for name in ("client", "starttls-client", "starttls-pipelined"):
        p = sub.add_parser(name)
        p.add_argument("--connect", required=True)
        p.add_argument("--ca", required=True)
        p.add_argument("--server-name")
        p.add_argument("--cert")
        p.add_argument("--key")
        if name == "client":
            p.add_argument("--message", default="Hello, world!")
            p.add_argument("--max-tls", choices=["1.2", "1.3"])
    args = parser.parse_args()
    if bool(getattr(args, "cert", None)) != bool(getattr(args, "key", None)):
        parser.error("--cert and --key go together")
    return {
        "server": serve_tls,
        "client": tls_client,
        "starttls-server": serve_starttls,
        "starttls-client": starttls_client,
        "starttls-pipelined": starttls_pipelined,
    }[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
