#!/usr/bin/env python3
"""AMP interop with REAL Twisted (twisted.protocols.amp), both directions.

  client   --connect HOST:PORT
      Against an AMP server (loomwork's `amp_server`, or `server` below). Every byte the
      server sends is compared with what Twisted's own AMP server answers to the same bytes
      (run in-process over a StringTransport):
        - ampclient.py: Sum(13, 81) == 94; Divide(1234, 0) fails with the declared
          ZeroDivisionError (ZERO_DIVISION);
        - RoundTrip of every argument type (Integer, String, Unicode, Boolean, Float incl.
          nan/inf/-inf, Decimal, DateTime, ListOf, AmpList, optional), byte for byte;
        - an unknown command (UNHANDLED, "Unhandled Command: b'Nope'"), byte for byte;
        - an undeclared error (Sum with a non-integer: UNKNOWN, then the server closes),
          byte for byte;
        - a value of exactly 65,535 bytes echoed;
        - 1,000 calls pipelined in one write, every answer matched to its call;
        - 1,000 Delayed calls answered out of order, each to its own caller once;
        - a malformed box (a key over 255 bytes) after a call: the call's answer, then the
          server closes that connection while another connection keeps answering.
      Exit 0 on success, 1 on any mismatch, 2 on bad arguments.
  server   --listen HOST:PORT
      Twisted's ampserver.py (Sum, Divide) plus RoundTrip (checks it was sent VECTORS and
      answers them), Echo, Fail (raises an undeclared error) and Delayed (answers after a
      delay, so answers come back out of order). Prints `listening on tcp IP:PORT`.
  selftest
      `client` against `server`, in one process.
"""

import argparse
import datetime
import decimal
import math
import sys

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.testing import StringTransport
from twisted.protocols import amp

TIMEOUT = 10.0


class Sum(amp.Command):
    arguments = [(b"a", amp.Integer()), (b"b", amp.Integer())]
    response = [(b"total", amp.Integer())]


class Divide(amp.Command):
    arguments = [(b"numerator", amp.Integer()), (b"denominator", amp.Integer())]
    response = [(b"result", amp.Float())]
    errors = {ZeroDivisionError: b"ZERO_DIVISION"}


EVERYTHING = [
    (b"integer", amp.Integer()),
    (b"string", amp.String()),
    (b"unicode", amp.Unicode()),
    (b"boolean", amp.Boolean()),
    (b"float", amp.Float()),
    (b"special", amp.Float()),
    (b"decimal", amp.Decimal()),
    (b"datetime", amp.DateTime()),
    (b"list", amp.ListOf(amp.Integer())),
    (b"rows", amp.AmpList([(b"a", amp.Integer()), (b"b", amp.Unicode())])),
    (b"maybe", amp.Integer(optional=True)),
]


class RoundTrip(amp.Command):
    arguments = EVERYTHING
    response = EVERYTHING


class Echo(amp.Command):
    arguments = [(b"data", amp.String())]
    response = [(b"data", amp.String())]


class Fail(amp.Command):
    arguments = []
    response = []


class Delayed(amp.Command):
    arguments = [(b"a", amp.Integer()), (b"delay_ms", amp.Integer())]
    response = [(b"a", amp.Integer())]


def tz(sign, hours, minutes):
    return amp._FixedOffsetTZInfo.fromSignHoursMinutes(sign, hours, minutes)


# The same vectors are in examples/tests/amp_twisted.rs: keep them in step.
VECTORS = [
    dict(integer=-7, string=b"\x00\xff bytes", unicode="h\u00e9llo \u2603", boolean=True,
         float=0.1, special=float("nan"), decimal=decimal.Decimal("1.50"),
         datetime=datetime.datetime(2012, 1, 23, 12, 34, 56, 54321, tzinfo=amp.utc),
         list=[3, 7, 9], rows=[dict(a=7, b="hello"), dict(a=9, b="goodbye")], maybe=None),
    dict(integer=2 ** 62, string=b"", unicode="", boolean=False, float=1e16,
         special=float("inf"), decimal=decimal.Decimal("-1E+2"),
         datetime=datetime.datetime(2000, 2, 29, 23, 59, 59, 999999, tzinfo=tz("+", 5, 30)),
         list=[], rows=[], maybe=5),
    dict(integer=0, string=b"\r\n\x00\x00", unicode="\u0000z", boolean=True, float=-1.5e-07,
         special=float("-inf"), decimal=decimal.Decimal("NaN"),
         datetime=datetime.datetime(1, 1, 1, 0, 0, 0, 0, tzinfo=tz("-", 8, 0)),
         list=[-1, 0, 2 ** 63 - 1], rows=[dict(a=0, b="")], maybe=-1),
]


def same(a, b):
    """Values equal, NaN equal to NaN (floats and Decimals)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


class Math(amp.AMP):
    """Twisted's ampserver.py, plus the interop commands."""

    def sum(self, a, b):
        total = a + b
        return {"total": total}

    Sum.responder(sum)

    def divide(self, numerator, denominator):
        result = float(numerator) / denominator
        return {"result": result}

    Divide.responder(divide)

    def round_trip(self, **values):
        if not any(same(values, v) for v in VECTORS):
            raise ValueError(f"RoundTrip sent unexpected values: {values!r}")
        return values

    RoundTrip.responder(round_trip)

    def echo(self, data):
        return {"data": data}

    Echo.responder(echo)

    def fail(self):
        raise RuntimeError("an error nobody declared")

    Fail.responder(fail)

    def delayed(self, a, delay_ms):
        return task.deferLater(reactor, delay_ms / 1000.0, lambda: {"a": a})

    Delayed.responder(delayed)


def twisted_answer(call_bytes):
    """What Twisted's own AMP server writes for `call_bytes`, and whether it then closes."""
    server = Math()
    transport = StringTransport()
    server.makeConnection(transport)
    server.dataReceived(call_bytes)
    return transport.value(), transport.disconnecting


def call_box(command, arguments, tag):
    box = command.makeArguments(arguments, None)
    box[b"_command"] = command.commandName
    box[b"_ask"] = tag
    return box.serialize()


class Raw(protocol.Protocol):
    """Bytes in, bytes out: for byte-for-byte comparisons."""

    def __init__(self):
        self.received = b""
        self.waiting = None
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.received += data
        self._check()

    def _check(self):
        if self.waiting and len(self.received) >= self.waiting[0]:
            n, d = self.waiting
            self.waiting = None
            d.callback(None)

    def read(self, n):
        d = defer.Deferred()
        self.waiting = (n, d)
        self._check()
        return d

    def connectionLost(self, reason):
        if not self.lost.called:
            self.lost.callback(None)


async def within(d, what):
    d.addTimeout(TIMEOUT, reactor)
    try:
        return await d
    except defer.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}")


async def connect(host, port, cls):
    return await protocol.ClientCreator(reactor, cls).connectTCP(host, port, timeout=TIMEOUT)


async def exchange(host, port, call_bytes, what):
    """Sends `call_bytes` raw; requires the reply Twisted itself would give, byte for byte
    (and the close, when Twisted would close)."""
    expected, closes = twisted_answer(call_bytes)
    proto = await connect(host, port, Raw)
    proto.transport.write(call_bytes)
    await within(proto.read(len(expected)), f"the answer to {what}")
    if proto.received != expected:
        raise AssertionError(f"{what}: got {proto.received!r}, Twisted says {expected!r}")
    if closes:
        await within(proto.lost, f"the server to close after {what}")
    else:
        proto.transport.loseConnection()
        await within(proto.lost, "our close")


async def check_math(host, port):
    proto = await connect(host, port, amp.AMP)
    result = await within(proto.callRemote(Sum, a=13, b=81), "Sum")
    assert result["total"] == 94, result
    try:
        await within(proto.callRemote(Divide, numerator=1234, denominator=0), "Divide")
        raise AssertionError("Divide(1234, 0) did not fail")
    except ZeroDivisionError:
        pass
    result = await within(proto.callRemote(Divide, numerator=10, denominator=4), "Divide")
    assert result["result"] == 2.5, result
    # Byte for byte, Divide's declared error included.
    proto.transport.loseConnection()
    await exchange(host, port, call_box(Sum, dict(a=13, b=81), b"1")
                   + call_box(Divide, dict(numerator=1234, denominator=0), b"2"),
                   "Sum and Divide(1234, 0)")


async def check_types(host, port):
    for i, values in enumerate(VECTORS):
        await exchange(host, port, call_box(RoundTrip, values, b"%x" % (i + 1)),
                       f"RoundTrip of vector {i}")
    proto = await connect(host, port, amp.AMP)
    for values in VECTORS:
        back = await within(proto.callRemote(RoundTrip, **values), "RoundTrip")
        if not same(back, values):
            raise AssertionError(f"RoundTrip: sent {values!r}, got {back!r}")
    proto.transport.loseConnection()


async def check_errors(host, port):
    await exchange(host, port, amp.AmpBox({b"_command": b"Nope", b"_ask": b"1"}).serialize(),
                   "an unknown command")
    bad = amp.AmpBox({b"_command": b"Sum", b"_ask": b"1", b"a": b"x", b"b": b"1"})
    await exchange(host, port, bad.serialize(), "Sum with a non-integer (UNKNOWN)")


async def check_limits(host, port):
    proto = await connect(host, port, amp.AMP)
    value = bytes(range(256)) * 255 + b"x" * 255
    assert len(value) == 65535
    back = await within(proto.callRemote(Echo, data=value), "Echo of 65,535 bytes")
    assert back["data"] == value, "65,535-byte value changed"
    # 1,000 calls in one turn of the reactor: written out together, before any answer.
    calls = [proto.callRemote(Sum, a=i, b=i) for i in range(1000)]
    results = await within(defer.gatherResults(calls), "1,000 pipelined answers")
    if results != [{"total": 2 * i} for i in range(1000)]:
        raise AssertionError("pipelined answers do not match their calls")
    # A malformed box ends only its own connection.
    bystander = proto
    raw = await connect(host, port, Raw)
    call = call_box(Sum, dict(a=1, b=2), b"1")
    expected, _ = twisted_answer(call)
    raw.transport.write(call + b"\x01\x00" + b"k" * 256 + b"\x00\x01v\x00\x00")
    await within(raw.lost, "the server to close after a malformed box")
    if raw.received != expected:
        raise AssertionError(f"malformed box: got {raw.received!r}, expected {expected!r}")
    result = await within(bystander.callRemote(Sum, a=2, b=2), "the other connection")
    assert result["total"] == 4
    bystander.transport.loseConnection()


async def check_out_of_order(host, port):
    """1,000 Delayed calls, later ones with shorter delays: answered out of order, each to
    its own caller exactly once."""
    proto = await connect(host, port, amp.AMP)
    order = []

    def answered(result, i):
        if result["a"] != i:
            raise AssertionError(f"Delayed {i} got the answer of {result['a']}")
        order.append(i)

    calls = [proto.callRemote(Delayed, a=i, delay_ms=(1000 - i) % 97).addCallback(answered, i)
             for i in range(1000)]
    await within(defer.gatherResults(calls), "1,000 delayed answers")
    if sorted(order) != list(range(1000)):
        raise AssertionError("some delayed calls were answered twice or never")
    if order == sorted(order):
        raise AssertionError("the delayed answers came back in order")
    proto.transport.loseConnection()


async def run_client(host, port):
    await check_math(host, port)
    await check_types(host, port)
    await check_errors(host, port)
    await check_limits(host, port)
    await check_out_of_order(host, port)
    print("ok: Sum/Divide (declared error), every argument type byte for byte "
          f"({len(VECTORS)} vectors), UNHANDLED and UNKNOWN byte for byte, 65,535-byte value, "
          "1,000 pipelined calls, 1,000 answered out of order, malformed box closes only its "
          "connection")


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("client").add_argument("--connect", required=True)
    sub.add_parser("server").add_argument("--listen", default="127.0.0.1:0")
    sub.add_parser("selftest")
    args = parser.parse_args(argv)

    factory = protocol.Factory.forProtocol(Math)
    if args.command == "server":
        host, port = split_addr(args.listen)
        bound = reactor.listenTCP(port, factory, interface=host).getHost()
        print(f"listening on tcp {bound.host}:{bound.port}", flush=True)
        reactor.run()
        return 0

    # The in-process reference server logs the UNKNOWN cases' tracebacks: expected, not news.
    from twisted.logger import globalLogBeginner
    globalLogBeginner.beginLoggingTo([lambda event: None], redirectStandardIO=False)

    failures = []

    async def client_main():
        if args.command == "client":
            host, port = split_addr(args.connect)
        else:
            host, port = "127.0.0.1", reactor.listenTCP(0, factory,
                                                        interface="127.0.0.1").getHost().port
        await run_client(host, port)

    def finished(result):
        if result is not None:
            failures.append(result)
            print(f"FAIL: {result.getErrorMessage()}", file=sys.stderr)
            print(result.getTraceback(), file=sys.stderr)
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(client_main()).addBoth(finished))
    reactor.run()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
