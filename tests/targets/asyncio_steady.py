"""A service that stays up until killed: every 0.4 s a Task stalls its loop in time.sleep
(Stall.run) and every 0.4 s another burns CPU (Crunch.run). Prints 'ready' once the loop runs
and, when asked (SIGUSR1), a JSON line with how many times each ran."""
import asyncio
import json
import signal
import sys
import time

counts = {"Stall.run": 0, "Crunch.run": 0}


class Stall:
    async def run(self):
        counts["Stall.run"] += 1
        time.sleep(0.12)


class Crunch:
    async def run(self):
        counts["Crunch.run"] += 1
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.06:
            pass


def report(*_):
    print(json.dumps(counts), flush=True)


async def main():
    signal.signal(signal.SIGUSR1, report)
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.2)
        await asyncio.create_task(Stall().run(), name="stall")
        await asyncio.sleep(0.2)
        await asyncio.create_task(Crunch().run(), name="crunch")


asyncio.run(main())
