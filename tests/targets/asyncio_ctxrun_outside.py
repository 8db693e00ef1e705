"""Context.run in a loop and then outside any: after asyncio.run() returns, module-level code
calls ctx.run() itself. Precise mode must time the loop's slow callback and not the calls outside the loop.
Usage: asyncio_ctxrun_outside.py GOFILE"""
import asyncio
import contextvars
import json
import os
import sys
import time

gofile = sys.argv[1]


def in_loop():
    time.sleep(0.03)


def outside():
    time.sleep(0.03)


async def main():
    print("ready", flush=True)
    while not os.path.exists(gofile):
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    for _ in range(200):            # many callbacks from the loop's own Context.run entry
        loop.call_soon(lambda: None)
        await asyncio.sleep(0)
    loop.call_soon(in_loop)
    await asyncio.sleep(0.1)


asyncio.run(main())
ctx = contextvars.copy_context()
for _ in range(3):
    ctx.run(outside)
print(json.dumps({"outside_calls": 3}), flush=True)
