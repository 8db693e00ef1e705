"""Small reproducers of issue 20's false reports. usage: false_reports.py SCENARIO GOFILE

Prints "ready <pid>", waits for GOFILE, runs SCENARIO and exits 0. Nothing here blocks its loop
unless it says so: each deliberate block prints one JSON line {"announce": name, "ms": ...,
"tid": ...} before it starts, so a test can tell announced blocks from false reports.

Scenarios:
  selectors   a thread's epoll loop (asyncio.run), then a PollSelector loop, then a
              SelectSelector loop on the same thread, each awaiting asyncio.sleep(0.3) x 5, while
              a socketserver thread serves a client whose handler waits in recv with a timeout
              (finding 1: the loop's own poll taken for a blocking call; finding 2: alerts on
              threads that are not loops)
  between     synchronous CPU work (0.4 s) between two asyncio.run loops (finding 4)
  mockselector  between two asyncio.run loops, 0.5 s of what asyncio's own unit tests do: loops
              whose selector is a unittest.mock.Mock (select() returns at once, no syscall),
              stepped with run_until_complete, with mock-based test code between (finding 4)
  shortlived  a short asyncio.run program with a large heap that ends right after an idle loop:
              its shutdown is no blocked loop (finding 10)
  exitsoon    one announced 150 ms block, then the process exits 0.2 s later (finding 11)
  subprocess  a Task whose coroutine starts a subprocess and blocks 150 ms (announced) inside
              asyncio's _make_subprocess_transport, waiting for the child's exec (finding 3: the
              Task's coroutine was said to be defined at unix_events.py, that function's line)
  linechurn   six callbacks, each compiling and running a new function 'work' from a fixed
              file name whose block (120 ms sleep, announced with its line) sits a different
              number of blank lines below the def: same name, file and first line, so the code
              object reuses the freed one's address (finding 5: lines not the frame's)
  contention  200 announced 60 ms blocks (sleeps and CPU spins alternately, each its own
              callback) while 2 CPU hogs per CPU (untraced children) compete for the CPUs
              (finding 11: blocks not named when the loop thread waits for a CPU)
  idle        a main-thread loop idle in asyncio.sleep for the whole trace (finding 7)
  threadloop  an asyncio loop in a threading.Thread (3.14+ runs every Thread.run inside
              Context.run, asyncio's callback boundary), one announced 150 ms block in it,
              beside a worker thread that only sleeps
"""
import asyncio
import json
import os
import selectors
import socket
import socketserver
import sys
import threading
import time

SCENARIO = sys.argv[1]
GO = sys.argv[2]


def announce(name, ms):
    print(json.dumps({"announce": name, "ms": ms, "tid": threading.get_native_id()}),
          flush=True)


async def sleeper():
    for _ in range(5):
        await asyncio.sleep(0.3)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(0.25)
        while True:
            try:
                data = self.request.recv(100)  # waits in poll() with a timeout
            except socket.timeout:
                continue
            if not data:
                return


def socket_side(stop):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    c = socket.create_connection(srv.server_address)
    stop.wait()
    c.close()
    srv.shutdown()


def selectors_case():
    stop = threading.Event()
    th = threading.Thread(target=socket_side, args=(stop,), daemon=True)
    th.start()
    asyncio.run(sleeper())
    loop = asyncio.SelectorEventLoop(selectors.PollSelector())
    loop.run_until_complete(sleeper())
    loop.close()
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    loop.run_until_complete(sleeper())
    loop.close()
    stop.set()
    th.join(5)


def sync_work():
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.4:
        pass


async def short():
    for _ in range(3):
        await asyncio.sleep(0.1)


def between_case():
    asyncio.run(short())
    sync_work()
    asyncio.run(short())


def mock_selector_case():
    from unittest import mock
    asyncio.run(short())
    t_end = time.perf_counter() + 0.5
    while time.perf_counter() < t_end:
        sel = mock.Mock()
        sel.select.return_value = []
        sel.get_key.side_effect = KeyError  # nothing registered (3.8-3.13 look it up so)
        sel.get_map.return_value = {}  # (3.14+ so)
        loop = asyncio.SelectorEventLoop(sel)
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 1)
        loop.call_later(0.001, lambda: None)
        loop.run_until_complete(fut)
        cb = mock.Mock()
        loop.call_soon(cb, 1)
        loop.run_until_complete(asyncio.sleep(0))
        cb.assert_called_once_with(1)
        loop.close()
    asyncio.run(short())


async def exits_soon():
    await asyncio.sleep(0.3)
    await asyncio.create_task(blocker(), name="blocker")
    await asyncio.sleep(0.2)


async def blocker():
    announce("blocker", 150)
    time.sleep(0.15)


def slow_exec():
    time.sleep(0.15)  # in the child, before exec: the parent's Popen waits for it


async def get_command_stdout():
    announce("get_command_stdout", 150)
    proc = await asyncio.create_subprocess_exec(
        "true", stdout=asyncio.subprocess.PIPE, preexec_fn=slow_exec)
    out, _ = await proc.communicate()
    return out


async def subprocess_main():
    await asyncio.sleep(0.2)
    await asyncio.create_task(get_command_stdout())
    await asyncio.sleep(0.2)


CHURN_FILE = "<linechurn>"
CHURN_GAPS = (3, 40, 7, 25, 1, 33)


def churn_once(gap):
    # 0.3 s: the live tick names the block while 'work' still exists (its code object is freed
    # right after); a tick that comes after the block finds it freed and drops the frame
    src = "def work():\n" + "\n" * gap + "    time.sleep(0.3)\n"
    ns = {"time": time}
    exec(compile(src, CHURN_FILE, "exec"), ns)
    print(json.dumps({"announce": "work", "ms": 300, "line": gap + 2,
                      "tid": threading.get_native_id()}), flush=True)
    ns["work"]()
    ns.clear()


async def linechurn_main():
    import gc
    for gap in CHURN_GAPS:
        await asyncio.sleep(0.15)
        asyncio.get_running_loop().call_soon(churn_once, gap)
        gc.collect()
    await asyncio.sleep(0.3)


def block_sleep():
    announce("block_sleep", 60)
    time.sleep(0.06)


def block_spin():
    announce("block_spin", 60)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.06:
        pass


async def contention_main():
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.2)
    for i in range(200):
        loop.call_soon(block_sleep if i % 2 == 0 else block_spin)
        await asyncio.sleep(0.02)


def contention_case():
    """The hogs are started and reaped outside the loop: reaped in it, under this contention,
    the Task's last step waited up to 60 ms in wait4, a real slow callback nobody announced"""
    import subprocess
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(2 * (os.cpu_count() or 1))]
    try:
        asyncio.run(contention_main())
    finally:
        for h in hogs:
            h.kill()
        for h in hogs:
            h.wait()


async def idle():
    await asyncio.sleep(3)


async def thread_loop_main():
    await asyncio.sleep(0.2)
    await asyncio.create_task(blocker(), name="blocker")
    await asyncio.sleep(0.2)


def threadloop_case():
    worker = threading.Thread(target=time.sleep, args=(0.8,))
    worker.start()
    th = threading.Thread(target=asyncio.run, args=(thread_loop_main(),))
    th.start()
    th.join()
    worker.join()


def main():
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        time.sleep(0.01)
    if SCENARIO == "selectors":
        selectors_case()
    elif SCENARIO == "between":
        between_case()
    elif SCENARIO == "mockselector":
        mock_selector_case()
    elif SCENARIO == "shortlived":
        # a heap that takes the interpreter's finalization well over 100 ms to free
        global HEAP
        HEAP = [{"i": i, "s": str(i)} for i in range(1500000)]
        asyncio.run(short())
    elif SCENARIO == "exitsoon":
        asyncio.run(exits_soon())
    elif SCENARIO == "subprocess":
        asyncio.run(subprocess_main())
    elif SCENARIO == "linechurn":
        asyncio.run(linechurn_main())
    elif SCENARIO == "contention":
        contention_case()
    elif SCENARIO == "threadloop":
        threadloop_case()
    elif SCENARIO == "idle":
        pass
    else:
        raise SystemExit("unknown scenario " + SCENARIO)


if SCENARIO == "idle":
    # idle from before the attach: the loop is already in asyncio.sleep when loopwatch starts
    async def idle_main():
        print("ready %d" % os.getpid(), flush=True)
        await asyncio.sleep(3)
    asyncio.run(idle_main())
else:
    main()
