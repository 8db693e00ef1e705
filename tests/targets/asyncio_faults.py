"""Targets for loopwatch's fault tests. Each mode prints "ready <pid>", waits for GOFILE, then:

  block   a Task that blocks the loop in time.sleep(30) (killed by the test mid-callback)
  exec    a slow callback, then execv() into asyncio_scenarios.py (already "go")
  fork    fork a child that runs its own slow loop; the parent's loop is slow too
  thread  start, after attach, a thread running a second asyncio loop with a slow Task
  flood   a call_soon chain whose every callback sleeps 300 us, for SECONDS (default 3)

and prints JSON lines of ground truth.
"""
import asyncio
import json
import os
import sys
import threading
import time

MODE, GO = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))


def out(**kw):
    print(json.dumps(kw), flush=True)


async def wait_go():
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


async def blocker():
    out(event="blocking", tid=threading.get_native_id())
    time.sleep(30)


async def before_exec():
    time.sleep(0.2)


def child_loop():
    async def child_slow():
        time.sleep(0.2)

    async def main():
        await asyncio.create_task(child_slow(), name="child-slow")
    asyncio.run(main())


async def thread_slow():
    time.sleep(0.2)


def second_loop(box):
    box.append(threading.get_native_id())

    async def main():
        await asyncio.create_task(thread_slow(), name="second-loop-task")
    asyncio.run(main())


async def main():
    await wait_go()
    if MODE == "block":
        await asyncio.create_task(blocker(), name="stuck")
    elif MODE == "exec":
        await asyncio.create_task(before_exec(), name="before-exec")
        await asyncio.sleep(0.1)
        out(event="exec", pid=os.getpid())
        # the new image's scenarios wait for the test's go-file: it makes it once loopwatch
        # has attached to the new image (a race with the re-attach otherwise)
        go2 = GO + ".2"
        os.execv(sys.executable, [sys.executable, os.path.join(HERE, "asyncio_scenarios.py"), go2])
    elif MODE == "fork":
        pid = os.fork()
        if pid == 0:
            child_loop()
            os._exit(0)
        out(event="fork", child=pid)
        await asyncio.create_task(before_exec(), name="parent-slow")
        _, status = os.waitpid(pid, 0)
        out(event="child_exit", status=status)
    elif MODE == "thread":
        box = []
        th = threading.Thread(target=second_loop, args=(box,), name="second-loop")
        th.start()
        while th.is_alive():
            await asyncio.sleep(0.02)
        out(event="thread", tid=box[0])
        await asyncio.sleep(0.2)
    elif MODE == "flood":
        secs = float(os.environ.get("FLOOD_SECONDS", "3"))
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        n = [0]
        end = time.perf_counter() + secs

        def cb():
            n[0] += 1
            time.sleep(0.0003)
            if time.perf_counter() < end:
                loop.call_soon(cb)
            else:
                done.set_result(None)
        t0 = time.perf_counter()
        loop.call_soon(cb)
        await done
        out(event="flood", callbacks=n[0], rate=n[0] / (time.perf_counter() - t0))
    print("done", flush=True)


asyncio.run(main())
