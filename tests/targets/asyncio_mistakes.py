"""Target for loopwatch's tests of asyncio's other mistakes. Prints "ready <pid>", waits for
GOFILE, then makes each mistake once, and lets CPython report them on stderr as it always does
(the oracle): a coroutine never awaited, a Task exception never retrieved, a Task destroyed while
pending.
"""
import asyncio
import gc
import json
import os
import sys
import time

GO = sys.argv[1]


async def fetch_user(uid):
    return uid


async def charge(amount):
    raise ValueError("card declined")


async def waiter(fut):
    await fut


def collect_garbage():
    """a callback whose time goes to the garbage collector"""
    junk = []
    for i in range(300000):
        a, b = [], []
        a.append(b)
        b.append(a)
        junk.append(a)
    del junk
    t0 = time.perf_counter()
    gc.collect()  # MARK:gc
    print(json.dumps({"gc_ms": (time.perf_counter() - t0) * 1000.0}), flush=True)


def forget_coroutine():
    fetch_user(7)  # MARK:dropped


async def main():
    loop = asyncio.get_running_loop()
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)

    forget_coroutine()
    await asyncio.sleep(0.05)

    t = asyncio.create_task(charge(10), name="payment-1")
    await asyncio.sleep(0.05)
    del t
    gc.collect()
    await asyncio.sleep(0.05)

    fut = loop.create_future()
    t = asyncio.create_task(waiter(fut), name="orphan")
    await asyncio.sleep(0.01)
    del t, fut
    gc.collect()
    await asyncio.sleep(0.05)

    gc.disable()     # only the explicit collection, inside the callback
    done = loop.create_future()
    loop.call_soon(lambda: (collect_garbage(), done.set_result(None)))
    await done
    gc.enable()
    await asyncio.sleep(0.05)
    print("done", flush=True)


asyncio.run(main())
