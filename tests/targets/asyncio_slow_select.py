"""A loop whose own code is slow right after a callback returns: its selector's select() sleeps
200 ms, or burns 150 ms of CPU, before it polls. Precise mode's entry-only probe ends a callback
at the next callback's entry or at the poll; what the loop does between the return and that
probe is not the callback's. Each callback measures itself (the ground truth) and main() prints
the measure after it: a print inside the callback, after its clock stops, would be timed by the
probes and not by the truth (a preemption there once made a 120.4 ms callback 124.3 ms).
Usage: asyncio_slow_select.py GOFILE"""
import asyncio
import json
import os
import selectors
import sys
import time

gofile = sys.argv[1]


class SlowSelector(selectors.DefaultSelector):
    then = None

    def select(self, timeout=None):
        what, self.then = self.then, None
        if what == "sleep":
            time.sleep(0.2)
        elif what == "spin":
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.15:
                pass
        return super().select(timeout)


measured = []


def block_then(sel, then):
    t0 = time.monotonic()
    time.sleep(0.12)
    ms = (time.monotonic() - t0) * 1e3
    sel.then = then
    measured.append({"cb": "block_then", "then": then, "ms": ms})


def spin_then(sel, then):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.12:
        pass
    ms = (time.monotonic() - t0) * 1e3
    sel.then = then
    measured.append({"cb": "spin_then", "then": then, "ms": ms})


async def main(sel):
    print("ready", flush=True)
    while not os.path.exists(gofile):
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    for then in ("sleep", "spin"):
        for cb in (block_then, spin_then):
            loop.call_soon(cb, sel, then)
            await asyncio.sleep(0.5)
            while measured:
                print(json.dumps(measured.pop(0)), flush=True)


sel = SlowSelector()
loop = asyncio.SelectorEventLoop(sel)
loop.run_until_complete(main(sel))
loop.close()
