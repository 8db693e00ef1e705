"""Target for the native-stack oracle tests (tests/integration/test_native.py): an asyncio
callback that blocks the loop in C code, announced first so that a test can take eu-stack's
stack of the same thread at the same point.

    python asyncio_native.py GOFILE [sleep|sqlite] [MS]

Prints "ready <pid>", waits for GOFILE, runs the blocking callback twice, each announced by
{"event": "blocking"} and followed by {"event": "slow", "ms": ...}.
"""
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time

GO = sys.argv[1]
WHAT = sys.argv[2] if len(sys.argv) > 2 else "sleep"
MS = int(sys.argv[3]) if len(sys.argv) > 3 else 1500


def blocker():
    if WHAT == "sqlite":
        # a C extension that blocks: sqlite3 waits for a lock another connection holds,
        # sleeping in libsqlite3's busy handler until its timeout
        path = os.path.join(tempfile.mkdtemp(), "db")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("create table if not exists t(x)")
        holder.execute("begin exclusive")
        waiter = sqlite3.connect(path, timeout=MS / 1000.0)
    print(json.dumps({"event": "blocking"}), flush=True)
    t0 = time.perf_counter()
    if WHAT == "sqlite":
        try:
            waiter.execute("insert into t values (1)")
        except sqlite3.OperationalError:
            pass
        waiter.close()
        holder.close()
    else:
        time.sleep(MS / 1000.0)
    print(json.dumps({"event": "slow", "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)


async def main():
    for _ in range(2):
        asyncio.get_running_loop().call_soon(blocker)
        await asyncio.sleep(0.3)


print("ready %d" % os.getpid(), flush=True)
while not os.path.exists(GO):
    time.sleep(0.01)
asyncio.run(main())
