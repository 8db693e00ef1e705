"""Callbacks whose stacks are deeper than loopwatch keeps (64 frames): deep_work recurses 100
frames down and blocks there in time.sleep(0.15), then burns 0.15 s of CPU at the same depth;
shallow_work blocks at the top. Prints 'ready' and waits for GOFILE, then a JSON line per
scenario with its duration by its own clock."""
import asyncio
import json
import os
import sys
import time

GO = sys.argv[1]


def dive(n, what):
    if n == 0:
        if what == "sleep":
            time.sleep(0.15)  # MARK:deep_sleep
        else:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.15:  # MARK:deep_spin
                pass
        return
    dive(n - 1, what)


async def deep_work(what):
    t0 = time.perf_counter()
    dive(100, what)
    print(json.dumps({"scenario": "deep_" + what, "ms": (time.perf_counter() - t0) * 1000}),
          flush=True)


async def shallow_work():
    t0 = time.perf_counter()
    time.sleep(0.15)  # MARK:shallow_sleep
    print(json.dumps({"scenario": "shallow", "ms": (time.perf_counter() - t0) * 1000}),
          flush=True)


async def main():
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await asyncio.create_task(deep_work("sleep"), name="deep-sleeper")
    await asyncio.sleep(0.05)
    await asyncio.create_task(deep_work("spin"), name="deep-spinner")
    await asyncio.sleep(0.05)
    await asyncio.create_task(shallow_work(), name="shallow")
    await asyncio.sleep(0.05)


asyncio.run(main())
