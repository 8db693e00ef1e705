"""A callback that sleeps and is then kept off its CPU after the wake-up: a SCHED_FIFO child,
pinned to the same CPU, spins from 10 ms after the callback's start to 130 ms, so the callback's
50 ms sleep (blocked) is followed by ~80 ms in the run queue. Prints what its own clocks saw:
the sleep's wall time from its start to its return (blocked + run queue), and the callback's.
Usage: asyncio_runq.py GOFILE"""
import asyncio
import json
import os
import sys
import time

SLEEP, SPIN_FROM, SPIN_TO = 0.05, 0.01, 0.13

gofile = sys.argv[1]
cpu = max(os.sched_getaffinity(0))
os.sched_setaffinity(0, {cpu})
go_r, go_w = os.pipe()
done_r, done_w = os.pipe()
child = os.fork()
if child == 0:
    os.close(go_w)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    while os.read(go_r, 1):
        t0 = time.monotonic()
        time.sleep(SPIN_FROM)          # the parent goes to sleep meanwhile
        while time.monotonic() - t0 < SPIN_TO:
            pass
        os.write(done_w, b"x")
    os._exit(0)
os.close(go_r)


def victim():
    t0 = time.perf_counter()
    os.write(go_w, b"g")
    s0 = time.perf_counter()
    time.sleep(SLEEP)
    s1 = time.perf_counter()
    os.read(done_r, 1)
    print(json.dumps({"sleep_wall_ms": (s1 - s0) * 1000.0, "sleep_ms": SLEEP * 1000.0,
                      "ms": (time.perf_counter() - t0) * 1000.0, "tid": os.getpid()}),
          flush=True)


async def main():
    print("ready", flush=True)
    while not os.path.exists(gofile):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    asyncio.get_running_loop().call_soon(victim)
    await asyncio.sleep(0.3)


asyncio.run(main())
os.close(go_w)
os.waitpid(child, 0)
