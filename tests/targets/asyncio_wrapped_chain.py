"""Callbacks that run one code object under several names: functools.wraps wrappers made by
one decorator (each its own function, with the wrapped function's __qualname__, all running
the decorator's wrapper code), each scheduling the next with call_soon, slow ones among many
fast ones. Precise mode reads a callback's names only when its function differs from the last
one's (same type, code and __qualname__ object): each wrapper must still get its own name.
Each slow callback measures itself (the ground truth). Usage: asyncio_wrapped_chain.py GOFILE"""
import asyncio
import functools
import json
import os
import sys
import time

gofile = sys.argv[1]
queue = []
done = None


def measured(fn):
    @functools.wraps(fn)
    def wrapper():
        t0 = time.monotonic()
        fn()
        ms = (time.monotonic() - t0) * 1e3
        if ms >= 50:
            print(json.dumps({"cb": fn.__qualname__, "ms": ms}), flush=True)
        loop = asyncio.get_running_loop()
        if queue:
            loop.call_soon(queue.pop(0))     # the wrapper itself is the next callback
        else:
            done.set_result(None)
    return wrapper


@measured
def fast():
    pass


@measured
def slow_a():
    time.sleep(0.08)


@measured
def slow_b():
    time.sleep(0.08)


async def main():
    global done
    print("ready", flush=True)
    while not os.path.exists(gofile):
        await asyncio.sleep(0.01)
    done = asyncio.get_running_loop().create_future()
    # fast ... slow_a, fast ... slow_b, then slow_a and slow_b back to back, then fast ...
    queue.extend([fast] * 500 + [slow_a] + [fast] * 500 + [slow_b] + [fast] * 500 +
                 [slow_a, slow_b] + [fast] * 500)
    asyncio.get_running_loop().call_soon(queue.pop(0))
    await done


asyncio.run(main())
