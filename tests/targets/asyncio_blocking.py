"""Target for loopwatch's default-mode tests: an asyncio program whose loop is blocked by I/O and
by the GIL, and one that does blocking work correctly (off the loop, in a thread pool).

    python asyncio_blocking.py GOFILE

Prints "ready <pid>", waits for GOFILE, runs each scenario and prints one JSON line of ground
truth per scenario (its own clock, the FIFO path, the TCP port, thread ids). Lines marked
"# MARK:name" are where each scenario blocks.
"""
import asyncio
import json
import os
import socket
import sys
import tempfile
import threading
import time

GO = sys.argv[1]


def truth(name, t0, **kw):
    d = {"scenario": name, "ms": (time.perf_counter() - t0) * 1000.0,
         "loop_tid": threading.get_native_id()}
    d.update(kw)
    print(json.dumps(d), flush=True)


def fifo_reader(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)   # keep a writer so read() waits for data
    os.set_blocking(fd, True)
    threading.Timer(0.25, os.write, (w, b"hello")).start()
    t0 = time.perf_counter()
    data = os.read(fd, 100)  # MARK:fifo
    truth("fifo", t0, path=path, n=len(data))
    os.close(fd)
    os.close(w)


async def read_fifo(path):
    fifo_reader(path)


def server(lsock):
    conn, _ = lsock.accept()
    time.sleep(0.25)
    conn.sendall(b"pong")
    conn.close()


async def tcp_client(port):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    t0 = time.perf_counter()
    data = s.recv(100)  # MARK:recv
    truth("recv", t0, port=port, n=len(data))
    s.close()


def hog(seconds_box, started):
    seconds_box.append(threading.get_native_id())
    started.set()
    t0 = time.perf_counter()
    sum(range(25_000_000))  # MARK:hog  (C code: holds the GIL throughout)
    seconds_box.append((time.perf_counter() - t0) * 1000.0)


async def gil_starved(loop):
    box, started = [], threading.Event()
    th = threading.Thread(target=hog, args=(box, started), name="gil-hog")
    t0 = time.perf_counter()
    th.start()
    started.wait()
    await asyncio.sleep(0.001)   # the loop needs the GIL back to run this
    await asyncio.sleep(0.001)
    th.join()
    truth("gil", t0, hog_tid=box[0], hog_ms=box[1])


async def pool_work(loop):
    t0 = time.perf_counter()
    tids = []

    def work():
        tids.append(threading.get_native_id())
        time.sleep(0.3)  # MARK:pool
    await loop.run_in_executor(None, work)
    await loop.run_in_executor(None, work)
    truth("pool", t0, worker_tids=tids)


async def main():
    loop = asyncio.get_running_loop()
    d = tempfile.mkdtemp(prefix="lw-target-")
    path = os.path.join(d, "events.fifo")
    os.mkfifo(path)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    threading.Thread(target=server, args=(lsock,), daemon=True).start()
    # start the pool before tracing so its threads exist either way
    await loop.run_in_executor(None, lambda: None)
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    which = os.environ.get("LW_SCENARIOS", "fifo,recv,gil,pool").split(",")
    if "fifo" in which:
        await asyncio.create_task(read_fifo(path), name="fifo-reader")
        await asyncio.sleep(0.05)
    if "recv" in which:
        await asyncio.create_task(tcp_client(port), name="tcp-client")
        await asyncio.sleep(0.05)
    if "gil" in which:
        await gil_starved(loop)
        await asyncio.sleep(0.05)
    if "pool" in which:
        await pool_work(loop)
        await asyncio.sleep(0.05)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
