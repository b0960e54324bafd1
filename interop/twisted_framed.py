#!/usr/bin/env python3
"""Wire-compatibility checks against REAL Twisted framing receivers
(docs/twisted-behaviour.md section 5).

  client   --framing F --connect HOST:PORT [--max-length N]
      Connects to a framed echo server (loomwork's `framed_echo`, or `server` below), sends
      frames (empty, exactly the maximum, a thousand in one write, one byte per write), checks
      the echoes with Twisted's own receiver of that framing, then checks that an over-limit
      frame (and, for netstrings, each malformed one) closes the connection after the earlier
      frame's echo while another connection keeps echoing. Exit 0 on success, 1 on any
      mismatch, 2 on bad arguments.
  server   --framing F --listen HOST:PORT [--max-length N]
      A Twisted echo server for the framing (the opposite direction: point loomwork clients at
      it). Prints `listening on tcp IP:PORT` once bound.
  selftest [--framing F ...]
      Twisted client against Twisted server, in one process, for every framing.

F is one of: line, line-only, netstring, int8, int16, int32.
"""

import argparse
import sys

from twisted.internet import defer, protocol, reactor, task
from twisted.protocols import basic

FRAMINGS = ("line", "line-only", "netstring", "int8", "int16", "int32")
RECEIVERS = {
    "line": basic.LineReceiver,
    "line-only": basic.LineOnlyReceiver,
    "netstring": basic.NetstringReceiver,
    "int8": basic.Int8StringReceiver,
    "int16": basic.Int16StringReceiver,
    "int32": basic.Int32StringReceiver,
}
PREFIX = {"int8": 1, "int16": 2, "int32": 4}
TIMEOUT = 10.0


def default_max(framing):
    """Twisted's defaults (DF-2, DF-3, DF-4), capped by what an IntN prefix can express."""
    if framing in ("line", "line-only"):
        return 16384
    if framing in PREFIX:
        return min(99999, 2 ** (8 * PREFIX[framing]) - 1)
    return 99999


def encode(framing, payload):
    """Frames `payload` by hand, independently of Twisted's senders."""
    if framing in ("line", "line-only"):
        return payload + b"\r\n"
    if framing == "netstring":
        return b"%d:%s," % (len(payload), payload)
    return len(payload).to_bytes(PREFIX[framing], "big") + payload


def over_limit(framing, max_length):
    """Bytes the peer must refuse; None when the framing cannot express such a frame."""
    if framing in ("line", "line-only"):
        # No delimiter and more than MAX + 2 bytes: refused before any line end arrives.
        return b"x" * (max_length + 3)
    if framing == "netstring":
        return b"%d:" % (max_length + 1)
    width = PREFIX[framing]
    if max_length + 1 >= 2 ** (8 * width):
        return None
    return (max_length + 1).to_bytes(width, "big")


def receiver_class(framing, max_length, on_frame):
    base = RECEIVERS[framing]

    class Receiver(base):
        MAX_LENGTH = max_length

        def frame(self, data):
            on_frame(self, data)

        lineReceived = frame
        stringReceived = frame

    return Receiver


# ----- server -------------------------------------------------------------------------------


def echo_factory(framing, max_length):
    def echo(proto, data):
        if framing in ("line", "line-only"):
            proto.sendLine(data)
        else:
            proto.sendString(data)

    return protocol.Factory.forProtocol(receiver_class(framing, max_length, echo))


# ----- client -------------------------------------------------------------------------------


class Session:
    """One client connection: collects echoed frames until `expected` arrived or it closed."""

    def __init__(self, framing, max_length, expected):
        self.expected = expected
        self.received = []
        self.done = defer.Deferred()
        self.lost = defer.Deferred()
        self.reason = None

        def on_frame(proto, data):
            self.received.append(data)
            if len(self.received) == self.expected and not self.done.called:
                self.done.callback(None)

        cls = receiver_class(framing, max_length, on_frame)
        session = self

        class Client(cls):
            def connectionLost(self, reason):
                # A Failure passed to callback() would turn into an errback: keep it aside.
                session.reason = reason
                if not session.lost.called:
                    session.lost.callback(None)

        self.protocol_class = Client


async def connect(host, port, session):
    endpoint_factory = protocol.ClientCreator(reactor, session.protocol_class)
    return await endpoint_factory.connectTCP(host, port, timeout=TIMEOUT)


async def within(d, what):
    d.addTimeout(TIMEOUT, reactor)
    try:
        return await d
    except defer.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}")


async def check_echoes(framing, host, port, max_length):
    payloads = [b"", b"hello", b"a\rb\nc" if framing not in ("line", "line-only") else b"a\rb",
                b"x" * max_length, b""]
    payloads += [b"frame %d" % i for i in range(1000)]
    dribble = [b"one byte at a time", b"", b"z"]
    session = Session(framing, max_length, len(payloads) + len(dribble))
    proto = await connect(host, port, session)
    # Many frames in one write, the exactly-max frame and empty frames among them.
    proto.transport.write(b"".join(encode(framing, p) for p in payloads))
    # Then frames dribbled one byte per write.
    for byte in b"".join(encode(framing, p) for p in dribble):
        proto.transport.write(bytes([byte]))
        await task.deferLater(reactor, 0, lambda: None)
    await within(session.done, f"{len(payloads) + len(dribble)} echoes")
    expected = payloads + dribble
    if session.received != expected:
        bad = next(i for i, (a, b) in enumerate(zip(session.received, expected)) if a != b)
        raise AssertionError(f"echo {bad} differs: {session.received[bad][:40]!r} "
                             f"!= {expected[bad][:40]!r}")
    proto.transport.loseConnection()
    await within(session.lost, "our close")


async def check_over_limit(framing, host, port, max_length):
    refused = over_limit(framing, max_length)
    if refused is None:
        return "skipped (the prefix cannot exceed the maximum)"
    # A second connection, open throughout, must keep echoing (FR-2: only the offender closes).
    bystander = Session(framing, max_length, 1)
    other = await connect(host, port, bystander)
    session = Session(framing, max_length, 1)
    proto = await connect(host, port, session)
    proto.transport.write(encode(framing, b"before") + refused)
    await within(session.lost, "the server to close after an over-limit frame")
    if session.received != [b"before"]:
        raise AssertionError(f"expected only the earlier echo, got {session.received[:3]!r}")
    other.transport.write(encode(framing, b"still here"))
    await within(bystander.done, "the other connection's echo")
    if bystander.received != [b"still here"] or bystander.lost.called:
        raise AssertionError(f"the other connection was disturbed: {bystander.received!r}")
    other.transport.loseConnection()
    await within(bystander.lost, "our close of the other connection")
    return "closed after the earlier echo; another connection kept echoing"


async def check_malformed(framing, host, port, max_length):
    """Netstrings only: each NS-2/NS-5 violation closes the connection after earlier echoes."""
    if framing != "netstring":
        return ""
    for bad in (b"03:abc,", b"-1:a,", b" 3:abc,", b":abc,", b"3:abcX"):
        session = Session(framing, max_length, 1)
        proto = await connect(host, port, session)
        proto.transport.write(encode(framing, b"before") + bad)
        await within(session.lost, f"the server to close after {bad!r}")
        if session.received != [b"before"]:
            raise AssertionError(f"{bad!r}: expected only the earlier echo, "
                                 f"got {session.received[:3]!r}")
    return "; malformed netstrings close after the earlier echo"


async def run_client(framing, host, port, max_length):
    await check_echoes(framing, host, port, max_length)
    note = await check_over_limit(framing, host, port, max_length)
    note += await check_malformed(framing, host, port, max_length)
    print(f"ok {framing}: echoes match (empty, max={max_length}, 1000 in one write, "
          f"dribbled); over-limit: {note}")


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("client", "server"):
        p = sub.add_parser(name)
        p.add_argument("--framing", choices=FRAMINGS, required=True)
        p.add_argument("--max-length", type=int)
        p.add_argument("--connect" if name == "client" else "--listen",
                       required=name == "client", default="127.0.0.1:0", dest="addr")
    p = sub.add_parser("selftest")
    p.add_argument("--framing", choices=FRAMINGS, action="append")
    args = parser.parse_args(argv)

    if args.command == "server":
        max_length = args.max_length or default_max(args.framing)
        host, port = split_addr(args.addr)
        port = reactor.listenTCP(port, echo_factory(args.framing, max_length), interface=host)
        bound = port.getHost()
        print(f"listening on tcp {bound.host}:{bound.port}", flush=True)
        reactor.run()
        return 0

    failures = []

    async def client_main():
        if args.command == "client":
            jobs = [(args.framing, *split_addr(args.addr),
                     args.max_length or default_max(args.framing))]
        else:
            jobs = []
            for framing in args.framing or FRAMINGS:
                max_length = default_max(framing)
                port = reactor.listenTCP(0, echo_factory(framing, max_length),
                                         interface="127.0.0.1")
                jobs.append((framing, "127.0.0.1", port.getHost().port, max_length))
        for framing, host, port, max_length in jobs:
            try:
                await run_client(framing, host, port, max_length)
            except Exception as error:  # report every framing, then fail
                failures.append(framing)
                print(f"FAIL {framing}: {error!r}", file=sys.stderr)

    def finished(result):
        if isinstance(result, Exception) or hasattr(result, "getTraceback"):
            failures.append(str(result))
            print(f"FAIL: {result}", file=sys.stderr)
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(client_main()).addBoth(finished))
    reactor.run()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
