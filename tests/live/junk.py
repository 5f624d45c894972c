#!/usr/bin/env python3
"""Datagrams a tokvox live receiver must refuse without stopping: random
bytes, other magic, another datagram version, another model, truncated and
overlong datagrams.  Used by tests/test_live.sh.

    junk.py PORT MODEL_ID_HEX [ROUNDS]
"""
import random
import socket
import struct
import sys
import time


def packet(model, version=2, kind=1, seq=0, codes=(1, 2, 3, 4, 5, 6, 7, 8), bits=10,
           magic=b"TVXP", stream_id=7):
    """A datagram of docs/stream.md: header, then one packet (TOC + codes)."""
    head = magic + bytes([version, kind, 0, 0]) + struct.pack("<IIQ", stream_id, seq, model)
    acc = 0
    for i, c in enumerate(codes):
        acc |= c << (i * bits)
    toc = bytes([max(len(codes), 1) - 1])
    return head + toc + acc.to_bytes((len(codes) * bits + 7) // 8, "little")


def main():
    port, model = int(sys.argv[1]), int(sys.argv[2], 16)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rng = random.Random(1)
    good = packet(model)
    junk = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 600))) for _ in range(40)]
    junk += [b"", b"T", b"TVXP", packet(model, magic=b"RTP!"), packet(model, version=3),
             packet(model ^ 1), packet(model ^ 0xFFFF, seq=5), good[:20], good[:-1],
             good + b"\0", good + bytes(3000), packet(model, kind=9),
             packet(model, codes=()), packet(model, codes=(0,) * 8, bits=0)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(rounds):
            for datagram in junk:
                s.sendto(datagram, ("127.0.0.1", port))
            time.sleep(0.05)


if __name__ == "__main__":
    main()
