"""Target for loopwatch's noise-control tests: one site slow 200 times in about 3 s (plus one
call much slower than the rest), a new site in the middle of that flood, a site the test
ignores, and sites under and over a per-site threshold. Prints "ready <pid>", waits for GOFILE,
then prints how many times each site ran slow: the ground truth.
"""
import asyncio
import json
import os
import sys
import time

GO = sys.argv[1]


class Sensor:
    def poll(self, slow=False):
        time.sleep(0.08 if slow else 0.012)


class Report:
    def build(self):
        time.sleep(0.02)


class Noisy:
    def tick(self):
        time.sleep(0.015)


class Cache:
    def refresh(self):
        time.sleep(0.03)

    def warm(self):
        time.sleep(0.06)


async def main():
    loop = asyncio.get_running_loop()
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    s, rep, noisy, cache = Sensor(), Report(), Noisy(), Cache()
    for i in range(200):
        fut = loop.create_future()
        loop.call_soon(s.poll)
        if i == 100:
            loop.call_soon(s.poll, True)      # an escalation: much slower than usual
        if i == 120:
            loop.call_soon(rep.build)         # a new site in the middle of the flood
        if i % 40 == 0:
            loop.call_soon(noisy.tick)        # ignored by the test
        loop.call_soon(fut.set_result, None)
        await fut
        await asyncio.sleep(0)
    for _ in range(3):
        fut = loop.create_future()
        loop.call_soon(cache.refresh)         # under its site threshold
        loop.call_soon(fut.set_result, None)
        await fut
    fut = loop.create_future()
    loop.call_soon(cache.warm)                # over it
    loop.call_soon(fut.set_result, None)
    await fut
    await asyncio.sleep(0.05)
    print(json.dumps({"Sensor.poll": 201, "Report.build": 1, "Noisy.tick": 5,
                      "Cache.refresh": 3, "Cache.warm": 1}), flush=True)
    print("done", flush=True)


asyncio.run(main())
