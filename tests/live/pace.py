#!/usr/bin/env python3
"""Real-time pacing for the ALSA file PCM of the live tests (tests/live/).

ALSA's null PCM, under the file plugin, runs as fast as the CPU: a stream on
it makes seconds of audio in milliseconds.  The file plugin writes what flows
through the PCM - played audio, or a copy of captured audio - to a file; the
tests point it at a FIFO that this script drains at BYTES_PER_SECOND with
absolute deadlines.  The plugin's writes then block, and the PCM, and
PortAudio's callback with it, run at the real-time rate, as a sound card
would.

The FIFO is opened read-write (Linux allows it) before any writer comes:
the pipe then exists from the start, is shrunk to one page at once so little
audio can queue ahead of the pace, and outlives the writers that PortAudio
opens and closes while it probes the devices.  FIFO.ready appears once this
is done; the script then runs until it is terminated.

    pace.py BYTES_PER_SECOND FIFO OUT      (OUT: what was played, or /dev/null)
"""
import fcntl
import os
import sys
import time

F_SETPIPE_SZ = 1031  # from linux/fcntl.h; not in Python's fcntl before 3.10


def main():
    rate, fifo, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    fd = os.open(fifo, os.O_RDWR)
    fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)
    open(fifo + ".ready", "w").close()  # the test starts the stream after this
    chunk = max(rate // 200, 4)  # 5 ms
    start, done = None, 0
    with open(out, "wb", buffering=0) as dst:
        while True:
            data = os.read(fd, chunk)
            # the clock starts with the first sound, not at the open: the time
            # before a stream starts must not become credit
            start = start or time.monotonic()
            dst.write(data)
            done += len(data)
            wait = start + done / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)


if __name__ == "__main__":
    main()
