"""A target for loopwatch's integration tests: one CPU-bound callback whose hot loop spreads its
time evenly over three lines (three C calls, each at its own instruction: none has a majority of
the CPU samples), followed by a tail on another line that takes a sixth of the time, at the end.
The line reported for its CPU must be one of the loop's, not the tail's.

    python cpu_lines.py GOFILE

Prints "ready <pid>", waits for GOFILE, runs the callback, prints one JSON line (truth), exits.
"""
import asyncio
import json
import os
import sys
import time

GO = sys.argv[1]
R = range(20000)


def hot(seconds):
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds * 5 / 6:
        n += sum(R)  # MARK:hot1
        n += sum(R)  # MARK:hot2
        n += sum(R)  # MARK:hot3
    t1 = time.perf_counter()
    while time.perf_counter() - t1 < seconds / 6:
        n += max(R)  # MARK:tail
    print(json.dumps({"scenario": "hot", "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)
    return n


async def main():
    loop = asyncio.get_running_loop()
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    for _ in range(3):
        fut = loop.create_future()
        loop.call_soon(lambda: (hot(0.6), fut.set_result(None)))
        await fut
        await asyncio.sleep(0.05)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
