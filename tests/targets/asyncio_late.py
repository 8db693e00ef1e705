"""A target that imports asyncio only after loopwatch attached: it prints "ready <pid>", waits
for GOFILE with plain time.sleep (no asyncio module loaded yet), then imports asyncio and runs a
named Task that blocks its loop for 300 ms at the line marked MARK:late, and prints its own
measurement (the ground truth).

    python asyncio_late.py GOFILE
"""
import json
import os
import sys
import time

GO = sys.argv[1]
print("ready %d" % os.getpid(), flush=True)
assert "asyncio" not in sys.modules
while not os.path.exists(GO):
    time.sleep(0.01)
time.sleep(0.6)     # loopwatch's periodic look at a process whose asyncio is not there yet

import asyncio  # noqa: E402


async def late_block():
    t0 = time.perf_counter()
    time.sleep(0.3)  # MARK:late
    print(json.dumps({"scenario": "late", "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)


async def main():
    await asyncio.sleep(0.2)
    await asyncio.create_task(late_block(), name="late-task")
    await asyncio.sleep(0.2)


asyncio.run(main())
print("done", flush=True)
