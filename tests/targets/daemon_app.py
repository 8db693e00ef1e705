"""A target for loopwatchd's integration tests: a small asyncio service that blocks its loop on
command, on any CPython 3.8+.

    python daemon_app.py TAG CTLDIR [--exit-after SECONDS] [--reexec] [--first N] [--poll S]
                         [--pidfile PATH]

TAG is a token only this test run uses (the daemon's config matches it in the command line, so
no other process on the host is traced). The program prints "ready <pid>" once its loop runs,
then watches CTLDIR:
  CTLDIR/block-N  (N = 1, 2, ...): a Task named "blocker" holds the loop 300 ms in time.sleep
                  (MARK:block), once per file; the program prints a JSON line per block.
  CTLDIR/stop     exit 0.
--pidfile PATH writes the pid there once the loop runs (after the exec, as daemons do).
--prefork N: a pre-fork server (gunicorn's model): the process prints "master <pid>", waits for
CTLDIR/fork, then forks N workers that never exec (same command line as the master); each
runs the loop above and prints "ready <pid>"; the master prints {"workers": [...]} and waits.
"""
import asyncio
import json
import os
import sys
import time

TAG = sys.argv[1]
CTL = sys.argv[2]
EXIT_AFTER = float(sys.argv[sys.argv.index("--exit-after") + 1]) if "--exit-after" in sys.argv else None
REEXEC = "--reexec" in sys.argv
PIDFILE = sys.argv[sys.argv.index("--pidfile") + 1] if "--pidfile" in sys.argv else None
POLL = float(sys.argv[sys.argv.index("--poll") + 1]) if "--poll" in sys.argv else 0.02
FIRST = int(sys.argv[sys.argv.index("--first") + 1]) if "--first" in sys.argv else 1


def block(n):
    t0 = time.perf_counter()
    time.sleep(0.3)  # MARK:block
    print(json.dumps({"block": n, "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)


async def blocker(n):
    block(n)


async def main():
    if PIDFILE:
        with open(PIDFILE + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(PIDFILE + ".tmp", PIDFILE)
    print("ready %d" % os.getpid(), flush=True)
    t0 = time.monotonic()
    n = FIRST
    while True:
        if EXIT_AFTER is not None and time.monotonic() - t0 >= EXIT_AFTER:
            return
        if os.path.exists(os.path.join(CTL, "stop")):
            return
        if os.path.exists(os.path.join(CTL, "block-%d" % n)):
            await asyncio.get_running_loop().create_task(blocker(n), name="blocker")
            n += 1
            if REEXEC:
                argv = [a for a in sys.argv if a != "--reexec"]
                if "--first" in argv:
                    del argv[argv.index("--first"):argv.index("--first") + 2]
                os.execv(sys.executable, [sys.executable] + argv + ["--first", str(n)])
        await asyncio.sleep(POLL)


def prefork(n):
    print("master %d" % os.getpid(), flush=True)
    while not os.path.exists(os.path.join(CTL, "fork")):
        time.sleep(0.02)
    kids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(main())
            finally:
                os._exit(0)
        kids.append(pid)
    print(json.dumps({"workers": kids}), flush=True)
    for pid in kids:
        os.waitpid(pid, 0)


if "--prefork" in sys.argv:
    prefork(int(sys.argv[sys.argv.index("--prefork") + 1]))
else:
    asyncio.run(main())
