"""Target for "one event, one warning": poll_sensor() holds the loop 12 ms in time.sleep, N
times. Prints "ready <pid>", waits for GOFILE, then

    spaced: one poll_sensor per loop iteration (asyncio.sleep(0.003) between them)
    flood:  N poll_sensor handles queued with call_soon at once (asyncio's own burst)

and prints {"poll_sensor": N, "slow": M}: how many ran and how many took at least 12 ms by
its own clock (the ground truth). SPIN_MS (optional): the loop's selector runs SPIN_MS of Python
code of its own in each select() before it polls (a selector wrapper's work; also where a
preempted loop thread waits after a slow callback on a loaded machine).

    python asyncio_chatty.py GOFILE N spaced|flood [SPIN_MS]
"""
import asyncio
import json
import os
import sys
import time

GO, N, MODE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SPIN = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0.0
made = {"poll_sensor": 0, "slow": 0}


def poll_sensor():
    t0 = time.perf_counter()
    time.sleep(0.012)  # MARK:sleep
    made["poll_sensor"] += 1
    if time.perf_counter() - t0 >= 0.012:
        made["slow"] += 1


def spin_before_poll(selector):
    poll = selector.select

    def select(timeout=None):
        end = time.perf_counter() + SPIN
        while time.perf_counter() < end:
            pass
        return poll(timeout)
    selector.select = select


async def main():
    loop = asyncio.get_running_loop()
    if SPIN:
        spin_before_poll(loop._selector)
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    if MODE == "flood":
        done = loop.create_future()
        for _ in range(N):
            loop.call_soon(poll_sensor)
        loop.call_soon(done.set_result, None)
        await done
    else:
        for _ in range(N):
            loop.call_soon(poll_sensor)
            await asyncio.sleep(0.003)
    await asyncio.sleep(0.05)
    print(json.dumps(made), flush=True)


asyncio.run(main())
