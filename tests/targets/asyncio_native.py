"""Target for the native-stack oracle tests (tests/integration/test_native.py): an asyncio
callback that blocks the loop in C code, announced first so that a test can take eu-stack's
stack of the same thread at the same point.

    python asyncio_native.py GOFILE [sleep|sqlite|zlib] [MS]

Prints "ready <pid>", waits for GOFILE, runs the blocking callback twice, each announced by
{"event": "blocking", "stack": [[qualname, file, line], ...]} (its own Python stack, innermost
first, the innermost line that of the call that blocks) and followed by {"event": "slow", "ms":
...}. zlib: the callback burns CPU for MS in zlib.compress of a large buffer (one call after
another, each well over 100 ms).
"""
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import zlib

GO = sys.argv[1]
WHAT = sys.argv[2] if len(sys.argv) > 2 else "sleep"
MS = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
# compressible but not trivially so: deflate at level 9 spends its time matching strings
DATA = b"".join(b"%d:%x;" % (i, (i * 2654435761) % 1000003) for i in range(400000)) \
    if WHAT == "zlib" else b""


def own_stack(call_line):
    """This thread's Python frames, innermost first: (qualname, file, line); the caller's frame
    at call_line, the line of the call that blocks"""
    out, f = [], sys._getframe(1)
    while f is not None:
        code = f.f_code
        out.append([getattr(code, "co_qualname", code.co_name), code.co_filename, f.f_lineno])
        f = f.f_back
    out[0][2] = call_line
    return out


def line_of(marker):
    with open(__file__) as src:
        for n, text in enumerate(src, 1):
            if text.rstrip().endswith("# " + marker):
                return n
    return None


def blocker():
    if WHAT == "sqlite":
        # a C extension that blocks: sqlite3 waits for a lock another connection holds,
        # sleeping in libsqlite3's busy handler until its timeout
        path = os.path.join(tempfile.mkdtemp(), "db")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("create table if not exists t(x)")
        holder.execute("begin exclusive")
        waiter = sqlite3.connect(path, timeout=MS / 1000.0)
    print(json.dumps({"event": "blocking", "stack": own_stack(line_of("CALL:" + WHAT))}),
          flush=True)
    t0 = time.perf_counter()
    if WHAT == "sqlite":
        try:
            waiter.execute("insert into t values (1)")  # CALL:sqlite
        except sqlite3.OperationalError:
            pass
        waiter.close()
        holder.close()
    elif WHAT == "zlib":
        while time.perf_counter() - t0 < MS / 1000.0:
            zlib.compress(DATA, 9)  # CALL:zlib
    else:
        time.sleep(MS / 1000.0)  # CALL:sleep
    print(json.dumps({"event": "slow", "ms": (time.perf_counter() - t0) * 1000.0}), flush=True)


async def main():
    for _ in range(2):
        asyncio.get_running_loop().call_soon(blocker)
        await asyncio.sleep(0.3)
    print(json.dumps({"event": "done"}), flush=True)


print("ready %d" % os.getpid(), flush=True)
while not os.path.exists(GO):
    time.sleep(0.01)
asyncio.run(main())
