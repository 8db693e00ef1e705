"""A target for loopwatch's integration tests: an asyncio program that blocks its loop in known
ways, on any CPython 3.8+.

    python asyncio_scenarios.py GOFILE [--uvloop]

It prints "ready <pid>" and waits (idle loop) until GOFILE exists, so the test can attach first.
Then it runs the scenarios below one after the other and prints one JSON line per scenario with
its own measurement (time.perf_counter around the slow work): the ground truth. Lines marked
"# MARK:name" are where each scenario blocks; tests find them by reading this file.
Run it with PYTHONASYNCIODEBUG=1 to have asyncio's own "Executing ... took" lines as an oracle;
the loop's slow_callback_duration is set to 10 ms so that both agree on the threshold.
"""
import asyncio
import functools
import json
import os
import sys
import time

GO = sys.argv[1]
SCEN = os.environ.get("LW_SCENARIOS", "all")


def truth(name, t0, **kw):
    d = {"scenario": name, "ms": (time.perf_counter() - t0) * 1000.0}
    d.update(kw)
    print(json.dumps(d), flush=True)


async def sleepy_work():
    t0 = time.perf_counter()
    time.sleep(0.3)  # MARK:sleep
    truth("sleepy", t0, task="sleepy")


async def short_block():
    t0 = time.perf_counter()
    time.sleep(0.012)  # MARK:short
    truth("short", t0, task="shorty")


async def unnamed_block():
    t0 = time.perf_counter()
    time.sleep(0.03)  # MARK:unnamed
    truth("unnamed", t0)


def stolen_ms():
    """Time this host's CPUs spent stolen by the hypervisor or in interrupts (/proc/stat, all
    CPUs): a thread's CPU clock leaves it out, its wall time on a CPU does not."""
    try:
        with open("/proc/stat") as f:
            v = f.readline().split()
        return sum(int(x) for x in v[6:9]) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0.0


def cpu_bound(seconds):
    t0, c0, s0 = time.perf_counter(), time.thread_time(), stolen_ms()
    x = 0
    while time.perf_counter() - t0 < seconds:  # MARK:cpu
        x += 1
    truth("cpu", t0, cpu_ms=(time.thread_time() - c0) * 1000.0, stolen_ms=stolen_ms() - s0)
    return x


class Ledger:
    def flush(self):
        t0 = time.perf_counter()
        time.sleep(0.05)  # MARK:flush
        truth("flush", t0)


def fast_cb(state, loop, done):
    state[0] += 1
    if state[0] < 5000:
        loop.call_soon(fast_cb, state, loop, done)
    else:
        done.set_result(None)


async def tiny():
    return 1


async def main():
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.010
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)

    # a named task whose coroutine calls time.sleep(0.3)
    await asyncio.create_task(sleepy_work(), name="sleepy")
    await asyncio.sleep(0.02)
    # 12 ms against a 10 ms threshold
    await asyncio.create_task(short_block(), name="shorty")
    await asyncio.sleep(0.02)
    # an unnamed task (3.12+: the name is an int counter)
    await asyncio.create_task(unnamed_block())
    await asyncio.sleep(0.02)
    # a CPU-bound plain callback through functools.partial
    fut = loop.create_future()
    loop.call_soon(lambda: (cpu_bound(0.15), fut.set_result(None)))
    await fut
    await asyncio.sleep(0.02)
    fut = loop.create_future()
    loop.call_soon(functools.partial(cpu_bound, 0.04))
    loop.call_soon(fut.set_result, None)
    await fut
    await asyncio.sleep(0.02)
    # a bound-method callback
    led = Ledger()
    fut = loop.create_future()
    loop.call_soon(led.flush)
    loop.call_soon(fut.set_result, None)
    await fut
    await asyncio.sleep(0.02)
    # thousands of fast callbacks and tasks: none may be reported
    t0 = time.perf_counter()
    done = loop.create_future()
    loop.call_soon(fast_cb, [0], loop, done)
    await done
    # small batches: in debug mode a big gather's step alone passes 10 ms
    for _ in range(50):
        await asyncio.gather(*[tiny() for _ in range(20)])
    truth("fast", t0, callbacks=5000, tasks=1000)
    await asyncio.sleep(0.05)
    print("done", flush=True)


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    asyncio.run(main())
