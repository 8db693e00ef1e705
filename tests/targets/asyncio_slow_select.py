"""A loop whose own code is slow right after a callback returns: its selector's select() sleeps
200 ms, or burns 150 ms of CPU, before it polls. Precise mode's entry-only probe ends a callback
at the next callback's entry or at the poll; what the loop does between the return and that
probe is not the callback's. Each callback measures itself (the ground truth).
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


def block_then(sel, then):
    t0 = time.monotonic()
    time.sleep(0.12)
    sel.then = then
    print(json.dumps({"cb": "block_then", "then": then,
                      "ms": (time.monotonic() - t0) * 1e3}), flush=True)


def spin_then(sel, then):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.12:
        pass
    sel.then = then
    print(json.dumps({"cb": "spin_then", "then": then,
                      "ms": (time.monotonic() - t0) * 1e3}), flush=True)


async def main(sel):
    print("ready", flush=True)
    while not os.path.exists(gofile):
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    for then in ("sleep", "spin"):
        for cb in (block_then, spin_then):
            loop.call_soon(cb, sel, then)
            await asyncio.sleep(0.5)


sel = SlowSelector()
loop = asyncio.SelectorEventLoop(sel)
loop.run_until_complete(main(sel))
loop.close()
