"""loopwatch demo: a small asyncio service whose loop gets blocked now and then.

Three things go wrong in it, as they do in real services:
  * a payment worker calls a synchronous client (time.sleep stands in for it) inside a coroutine;
  * a report callback burns CPU on the loop thread;
  * a config reload reads a file through a FIFO nobody is writing to yet.
Everything else is healthy: a steady trickle of fast requests.
"""
import asyncio
import os
import random
import sys
import tempfile
import threading
import time


def blocking_charge(amount):
    time.sleep(0.25)  # a synchronous HTTP client would block here
    return amount


async def charge(order):
    return blocking_charge(order * 10)


async def payment_worker():
    n = 0
    while True:
        await asyncio.sleep(1.0)
        n += 1
        await asyncio.create_task(charge(n), name="payment-%d" % n)


def build_report():
    t0 = time.perf_counter()
    total = 0
    while time.perf_counter() - t0 < 0.15:
        total += sum(i * i for i in range(1000))
    return total


async def handle_request(i):
    await asyncio.sleep(random.random() * 0.01)
    return i


async def traffic():
    i = 0
    while True:
        await asyncio.gather(*[handle_request(i + k) for k in range(20)])
        i += 20
        await asyncio.sleep(0.02)


async def reload_config(fifo):
    await asyncio.sleep(2.5)
    with open(fifo) as f:  # blocks in open() until a writer shows up
        f.read()


def writer(fifo):
    time.sleep(2.9)
    with open(fifo, "w") as f:
        f.write("debug = false\n")


async def main():
    loop = asyncio.get_running_loop()
    fifo = os.path.join(tempfile.mkdtemp(prefix="lw-demo-"), "config.fifo")
    os.mkfifo(fifo)
    print("demo app running as pid %d" % os.getpid(), flush=True)
    asyncio.create_task(payment_worker())
    asyncio.create_task(traffic())
    asyncio.create_task(reload_config(fifo))
    threading.Thread(target=writer, args=(fifo,), daemon=True).start()
    while True:
        await asyncio.sleep(1.7)
        loop.call_soon(build_report)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
