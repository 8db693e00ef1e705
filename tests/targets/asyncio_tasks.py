"""A known tree of asyncio Tasks for `loopwatch tasks`: gather, a Task awaiting another Task,
wait_for, asyncio.wait, a TaskGroup (3.11+), Tasks waiting on a Lock held by another Task, an Event, a Queue, a
Semaphore, sleep, a Task being cancelled (3.11+), and a second loop in another thread. Once every
Task waits, the target prints its own view as one JSON line -- asyncio.all_tasks() of each loop,
each Task's name, coroutine, state, its await chain as the interpreter itself follows it
(cr_await / gi_yieldfrom, innermost first, with file:line) and get_stack() -- and the await edges
it built, then 'ready', and holds still (its loops idle) until killed.

argv[1] (optional): a number N of extra idle Tasks (a larger inventory), or "churn": after the
view, keep creating, gathering and finishing short-lived Tasks (a set that changes while it is
read); "uvloop": run both loops on uvloop; "block": after 'ready', a Task named blocker blocks
the loop in time.sleep() (it prints 'blocking' first); "nodl": without the two Tasks that await
each other (CPython's own `asyncio pstree` refuses a graph with a cycle)."""
import asyncio
import json
import sys
import threading
import time

CHURN = "churn" in sys.argv[1:]
BLOCK = "block" in sys.argv[1:]
UVLOOP = "uvloop" in sys.argv[1:]
NODL = "nodl" in sys.argv[1:]
EXTRA = sum(int(a) for a in sys.argv[1:] if a.isdigit())
EDGES = []          # (child, parent, via): the await graph as built
VIEWS = {}          # loop thread's native id -> [task views]
never = None


async def deeper():
    await asyncio.sleep(3600)


async def leaf():
    await deeper()


async def wait_never(ev):
    await ev.wait()


async def lock_holder(lock, ev):
    async with lock:
        await wait_never(ev)


async def lock_waiter(lock):
    async with lock:
        pass


async def queue_getter(q):
    await q.get()


async def sem_waiter(sem):
    await sem.acquire()


async def sleeper():
    await asyncio.sleep(3600)


async def gatherer(a, b):
    await asyncio.gather(a, b)


async def awaiter(t):
    await t


async def wait_any(ts):
    await asyncio.wait(ts)


async def waiter_for(t):
    await asyncio.wait_for(t, 3600)


async def tg_parent():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(leaf(), name="tg-child-1")
        tg.create_task(nested_tg(), name="tg-child-2")


async def nested_tg():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(leaf(), name="tg-grandchild")


async def nested_gather(a, b, c):
    await asyncio.gather(a, asyncio.gather(b, c))


TASKS = {}


async def wait_other(name):
    await asyncio.sleep(0.01)
    await TASKS[name]


async def blocker():
    print("blocking", flush=True)
    time.sleep(30)  # MARK:block


async def stubborn(ev):
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await ev.wait()


def chain(task):
    """The await chain the interpreter sees: coroutine frames, innermost first."""
    out = []
    c = task.get_coro()
    for _ in range(64):
        frame = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None) or \
            getattr(c, "ag_frame", None)
        if frame is None:
            break
        out.append({"qualname": c.__qualname__, "file": frame.f_code.co_filename,
                    "line": frame.f_lineno})
        nxt = getattr(c, "cr_await", None)
        if nxt is None:
            nxt = getattr(c, "gi_yieldfrom", None)
        if nxt is None or not hasattr(nxt, "__qualname__") or \
                not any(hasattr(nxt, a) for a in ("cr_frame", "gi_frame", "ag_frame")):
            break
        c = nxt
    out.reverse()
    return out


def view(loop):
    out = []
    for t in asyncio.all_tasks(loop):
        state = "pending"
        if hasattr(t, "cancelling") and t.cancelling():
            state = "cancelling"
        out.append({"name": t.get_name(), "coro": t.get_coro().__qualname__, "state": state,
                    "stack": chain(t),
                    "get_stack": [[f.f_code.co_filename, f.f_lineno] for f in t.get_stack()]})
    return out


def thread_loop(started):
    async def other():
        loop = asyncio.get_running_loop()
        asyncio.current_task().set_name("thread-main")
        t = loop.create_task(sleeper(), name="thread-sleeper")
        EDGES.append(("thread-sleeper", "thread-main", "await"))

        def dump():     # a plain callback: every Task of this loop is suspended
            VIEWS[threading.get_native_id()] = view(loop)
            started.set()
        loop.call_later(0.1, dump)
        await t

    asyncio.run(other())


async def main():
    global never
    asyncio.current_task().set_name("main")
    never = asyncio.Event()
    lock = asyncio.Lock()
    q = asyncio.Queue()
    sem = asyncio.Semaphore(0)
    loop = asyncio.get_running_loop()
    mk = loop.create_task
    mk(lock_holder(lock, never), name="lock-holder")
    await asyncio.sleep(0)
    mk(lock_waiter(lock), name="lock-waiter")
    mk(queue_getter(q), name="queue-getter")
    mk(sem_waiter(sem), name="sem-waiter")
    mk(sleeper(), name="sleeper")
    a = mk(leaf(), name="gather-child-1")
    b = mk(leaf(), name="gather-child-2")
    mk(gatherer(a, b), name="gatherer")
    EDGES.extend([("gather-child-1", "gatherer", "gather"), ("gather-child-2", "gatherer", "gather")])
    tt = mk(wait_never(never), name="awaited")
    mk(awaiter(tt), name="awaiter")
    EDGES.append(("awaited", "awaiter", "await"))
    wi = mk(wait_never(never), name="waitfor-inner")
    mk(waiter_for(wi), name="waitfor")
    EDGES.append(("waitfor-inner", "waitfor", "wait_for" if sys.version_info < (3, 12) else "await"))
    wa = [mk(leaf(), name="wait-child-%d" % i) for i in (1, 2)]
    mk(wait_any(wa), name="wait-any")
    EDGES.extend([("wait-child-%d" % i, "wait-any", "wait") for i in (1, 2)])
    ng = [mk(leaf(), name="ng-%d" % i) for i in (1, 2, 3)]
    mk(nested_gather(*ng), name="nested-gather")
    EDGES.extend([("ng-%d" % i, "nested-gather", "gather") for i in (1, 2, 3)])
    # two Tasks awaiting each other: a deadlock
    if not NODL:
        TASKS["dl-a"] = mk(wait_other("dl-b"), name="dl-a")
        TASKS["dl-b"] = mk(wait_other("dl-a"), name="dl-b")
        EDGES.extend([("dl-a", "dl-b", "await"), ("dl-b", "dl-a", "await")])
    if sys.version_info >= (3, 11):
        mk(tg_parent(), name="tg-parent")
        EDGES.extend([("tg-child-1", "tg-parent", "taskgroup"),
                      ("tg-child-2", "tg-parent", "taskgroup"),
                      ("tg-grandchild", "tg-child-2", "taskgroup")])
        st = mk(stubborn(never), name="stubborn")
    for i in range(EXTRA):
        mk(sleeper(), name="extra-%d" % i)
    await asyncio.sleep(0.2)
    if sys.version_info >= (3, 11):
        st.cancel()
    started = threading.Event()
    threading.Thread(target=thread_loop, args=(started,), daemon=True).start()

    def dump():         # a plain callback: every Task of this loop is suspended
        started.wait(10)
        VIEWS[threading.get_native_id()] = view(loop)
        print(json.dumps({"views": {str(k): v for k, v in VIEWS.items()}, "edges": EDGES}),
              flush=True)
        print("ready", flush=True)
        if BLOCK:
            mk(blocker(), name="blocker")
    loop.call_later(0.2, dump)
    if CHURN:
        await asyncio.sleep(0.3)
        n = 0
        while True:
            batch = [mk(churn_one(i % 7), name="churn-%d" % (n + i)) for i in range(50)]
            n += 50
            await asyncio.gather(*batch[:25])
            await asyncio.sleep(0)
    await never.wait()


async def churn_one(k):
    for _ in range(k):
        await asyncio.sleep(0)
    if k % 3 == 0:
        await asyncio.sleep(0.001 * k)


if UVLOOP:
    import uvloop
    uvloop.install()
asyncio.run(main())
