#!/usr/bin/env python3
"""Writes the hand-made seed inputs into corpus/<target>/ (the fuzzer's finds sit beside them).

Layout of every input (see loomwork::framing::fuzzing): max, flags, two framing-specific
bytes, four chunk sizes, then the stream.
"""
import os

os.chdir(os.path.dirname(os.path.abspath(__file__)))


def seed(target, name, max_, flags, extra, chunks, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/seed-{name}", "wb") as f:
        f.write(bytes([max_, flags, extra[0], extra[1]] + chunks) + data)


C = [2, 0, 6, 1]
# Lines: flags bit 0 = skip, bits 1-2 = delimiter (0 CRLF, 1 LF, 2 NUL, 3 "aba").
seed("line", "crlf-basic", 16, 0, (0, 0), C, b"hello\r\nworld\r\n\r\npartial")
seed("line", "lr5-boundary", 5, 0, (0, 0), C, b"12345\r\n123456\r\n")
seed("line", "lr5-unterminated", 5, 0, (0, 0), [0, 0, 0, 0], b"1234567")
seed("line", "skip-long", 5, 1, (0, 0), C, b"12345\r\n1234567890\r\nok\r\n")
seed("line", "lone-cr-lf", 8, 0, (0, 0), C, b"a\rb\nc\r\n\n\r\r\n")
seed("line", "lf", 8, 2, (0, 0), C, b"one\ntwo\n\nthree")
seed("line", "nul", 8, 4, (0, 0), C, b"one\0two\0\0")
seed("line", "aba-overlap", 8, 6, (0, 0), C, b"xababa abaaba")
seed("line", "aba-skip", 3, 7, (0, 0), C, b"abacdefgabaxyaba")
# Netstrings: flags bit 0 = skip.
seed("netstring", "basic", 99, 0, (0, 0), C, b"3:abc,0:,5:a:,\r\n,")
seed("netstring", "leading-zero", 99, 0, (0, 0), C, b"03:abc,")
seed("netstring", "early-reject", 99, 0, (0, 0), C, b"1000")
seed("netstring", "missing-comma", 99, 0, (0, 0), C, b"3:abcX")
seed("netstring", "missing-length", 99, 0, (0, 0), C, b":abc,")
seed("netstring", "exact-max", 5, 0, (0, 0), C, b"5:12345,6:123456,")
seed("netstring", "skip", 3, 1, (0, 0), C, b"2:ok,12:skipthispart,3:yes,")


# Length-prefixed: flags bit 0 = skip, bit 1 = little-endian, bits 2-4 = width - 1,
# bits 5-6 = offset; extra = (adjustment as i8 * 16, strip).
def flags(skip=0, le=0, width=4, offset=0):
    return skip | (le << 1) | ((width - 1) << 2) | (offset << 5)


seed("length", "int8", 60, flags(width=1), (0, 1), C, b"\x02hi\x00\x05hello")
seed("length", "int16", 60, flags(width=2), (0, 2), C, b"\x00\x02hi\x00\x00\x00\x05hello")
seed("length", "int32", 60, flags(width=4), (0, 4), C, b"\x00\x00\x00\x02hi\x00\x00\x00\x00")
seed("length", "int32-over", 10, flags(width=4), (0, 4), C, b"\x00\x00\x00\x01a\x00\x00\x00\xff")
seed("length", "le3", 60, flags(le=1, width=3), (0, 3), C, b"\x03\x00\x00xyz")
seed("length", "be8", 60, flags(width=8), (0, 8), C, b"\x00" * 7 + b"\x01q" + b"\xff" * 8)
seed("length", "offset-adjust", 60, flags(width=2, offset=1), (0xD0, 0), C, b"T\x00\x05hiU\x00\x03")
seed("length", "skip", 2, flags(skip=1, width=2), (0, 2), C,
     b"\x00\x01a\x00\x20" + b"x" * 32 + b"\x00\x02ok")

# Policies: read rate, burst, write rate, idle period (x8 ms; 0 = off), then operations
# (0/1 data chunk, 2 written, 3 time passes, 4 protocol writes, 5 EOF, 6 close, 7 abort/reset).
def policy(name, head, ops):
    os.makedirs("corpus/policy", exist_ok=True)
    with open(f"corpus/policy/seed-{name}", "wb") as f:
        f.write(bytes(head) + ops)


policy("throttled-reads", [4, 16, 4, 0], bytes([0, 40]) + b"x" * 40 + bytes([3, 50, 3, 50, 0, 8]) + b"abcdefgh" + bytes([3, 200]))
policy("write-then-drain", [1, 8, 1, 0], bytes([4, 60, 2, 30, 3, 100, 2, 30, 3, 250]))
policy("idle-close", [8, 32, 8, 5], bytes([0, 3]) + b"abc" + bytes([3, 5, 3, 20, 3, 60]))
policy("abort-mid-throttle", [0, 4, 0, 0], bytes([0, 20]) + b"y" * 20 + bytes([3, 1, 7, 0, 3, 50]))


# AMP (see loomwork::amp::fuzzing): the decoder's bound (8 + 4 * b), four chunk sizes, then
# the stream, which is also the machine's script (op, argument, ...): op % 8 = 0/6 call,
# 1 answer tag arg % 20, 2 error, 3 advance 100 ms * arg, 4 raw bytes, 5 inbound command,
# 7 end.
def amp_seed(name, max_, chunks, data):
    os.makedirs("corpus/amp", exist_ok=True)
    with open(f"corpus/amp/seed-{name}", "wb") as f:
        f.write(bytes([max_] + chunks) + data)


TWISTED_CALLS = (b"\x00\x04_ask\x00\x011\x00\x08_command\x00\x03Sum\x00\x01a\x00\x0213\x00\x01b"
                 b"\x00\x0281\x00\x00\x00\x04_ask\x00\x012\x00\x08_command\x00\x06Divide\x00\x0b"
                 b"denominator\x00\x010\x00\tnumerator\x00\x041234\x00\x00")
amp_seed("twisted-calls", 40, C, TWISTED_CALLS)
amp_seed("key-too-long", 40, C, b"\x00\x01a\x00\x011\x00\x00\x01\x00" + b"k" * 40)
amp_seed("box-too-long", 2, C, b"\x00\x01a\x00\xff" + b"v" * 40)
amp_seed("empty-boxes", 10, [0, 0, 0, 0], b"\x00\x00\x00\x00\x00\x00")
amp_seed("calls-answered-backwards", 60, C,
         bytes([0, 1, 0, 2, 0, 3, 1, 3, 1, 2, 1, 1, 1, 1, 7, 0]))
amp_seed("timeouts-then-late-answers", 60, C,
         bytes([0, 1, 0, 2, 3, 5, 3, 6, 1, 1, 1, 2, 2, 0x40, 7, 1]))
amp_seed("errors-and-commands", 60, C,
         bytes([0, 1, 2, 1, 0, 2, 2, 2, 5, 0, 5, 1, 5, 2, 5, 4, 6, 9, 1, 3]))
amp_seed("raw-partial-box", 60, C,
         bytes([0, 1, 4, 6]) + b"\x00\x07_an" + bytes([4, 10]) + b"swer\x00\x011\x00\x00" +
         bytes([7, 2]))
