"""A target that floods loopwatch with records (issue 19's fairness test): THREADS asyncio loops
(threads of one process), each running a call_soon chain whose callbacks block 2 ms in
time.sleep, forever: against 1 ms thresholds, every iteration is a slow tick and a blocking call,
thousands of records a second. With PERIOD (seconds), each callback comes PERIOD after the
previous one instead of at once: about 8 KB of records per PERIOD and loop.

    python asyncio_flooder.py TAG [THREADS [PERIOD]]

TAG is in the command line for the daemon's matcher. Prints "ready <pid>" once the loops run.
"""
import asyncio
import os
import sys
import threading
import time

THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PERIOD = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0


def flood_loop(started):
    loop = asyncio.new_event_loop()

    def step():
        time.sleep(0.002)  # MARK:flood
        if PERIOD:
            loop.call_later(PERIOD, step)
        else:
            loop.call_soon(step)

    loop.call_soon(step)
    loop.call_soon(started.release)
    loop.run_forever()


def main():
    started = threading.Semaphore(0)
    for _ in range(THREADS):
        threading.Thread(target=flood_loop, args=(started,), daemon=True).start()
    for _ in range(THREADS):
        started.acquire()
    print("ready %d" % os.getpid(), flush=True)
    while True:
        time.sleep(3600)


main()
