#!/usr/bin/env python3
"""An attacker in the path of a sealed tokvox live call, for tests/test_live.sh.

It relays the sender's datagrams to the receiver (so it is, to the
receiver, the call's sender), and meanwhile:

  - replays every datagram it relays, 0.2 s later, from the relay's own
    address (the receiver's replay window must refuse them);
  - forges: each datagram with one bit of its ciphertext or tag flipped,
    and with another sequence number (authentication must fail);
  - injects unsealed datagrams of the right model and stream id (a key is
    required);
  - sends copies of the real datagrams from another address (the receiver
    pins the first authenticated sender).

Prints one JSON line of what it sent.  Creates READY_FILE once it listens;
stops 1.5 s after the call's last datagram.

    attack.py RELAY_PORT RECEIVER_PORT MODEL_ID_HEX READY_FILE
"""
import json
import random
import socket
import struct
import sys
import time


def plain_datagram(model, stream_id, seq):
    """A well-formed, unsealed datagram: header, TOC (8 codebooks), codes."""
    head = b"TVXP" + bytes([2, 1, 0, 0]) + struct.pack("<IIQ", stream_id, seq, model)
    return head + bytes([7]) + bytes(random.getrandbits(8) for _ in range(10)) \
        .replace(b"\xff", b"\x00")


def main():
    relay_port, target_port, model = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3], 16)
    random.seed(1)
    target = ("127.0.0.1", target_port)
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", relay_port))
    relay.settimeout(0.02)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    open(sys.argv[4], "w").close()
    sent = {"relayed": 0, "replayed": 0, "forged": 0, "unsealed": 0, "other_address": 0}
    pending = []  # (due, datagram) replays
    last = None
    while True:
        now = time.monotonic()
        try:
            data, _ = relay.recvfrom(4096)
        except socket.timeout:
            data = None
        now = time.monotonic()
        if data:
            last = now
            relay.sendto(data, target)
            sent["relayed"] += 1
            pending.append((now + 0.2, data))
            if len(data) > 40:
                flip = bytearray(data)
                flip[random.randrange(32, len(flip))] ^= 1 << random.randrange(8)
                relay.sendto(bytes(flip), target)
                seq = bytearray(data)
                seq[12] ^= 0x40
                relay.sendto(bytes(seq), target)
                sent["forged"] += 2
                stream_id, number = struct.unpack_from("<II", data, 8)
                relay.sendto(plain_datagram(model, stream_id, number + 3), target)
                sent["unsealed"] += 1
            other.sendto(data, target)
            sent["other_address"] += 1
        for due, d in [p for p in pending if p[0] <= now]:
            relay.sendto(d, target)
            sent["replayed"] += 1
        pending = [p for p in pending if p[0] > now]
        if last is not None and now - last > 1.5 and not pending:
            break
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
