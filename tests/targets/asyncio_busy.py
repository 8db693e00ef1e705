"""A loop that never rests: a call_soon chain runs callbacks back to back (tens of thousands a
second, so probes are attached while callbacks are in flight), and every 0.2 s the chain
schedules stall(), which blocks the loop in time.sleep(0.03). Each stall prints a JSON line
with when it ended (wall clock) and how long it took by its own clock."""
import asyncio
import json
import time

PERIOD = 0.2


def stall():
    t0 = time.perf_counter()
    time.sleep(0.03)
    ms = (time.perf_counter() - t0) * 1000.0
    print(json.dumps({"stall_end": time.time(), "ms": ms}), flush=True)


async def main():
    loop = asyncio.get_running_loop()
    due = [time.monotonic() + PERIOD]

    def chain():
        now = time.monotonic()
        if now >= due[0]:
            due[0] = now + PERIOD
            loop.call_soon(stall)
        loop.call_soon(chain)

    loop.call_soon(chain)
    print("ready", flush=True)
    await asyncio.sleep(3600)


asyncio.run(main())
