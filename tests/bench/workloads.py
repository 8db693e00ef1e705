"""Benchmark workloads for loopwatch: each waits for a go-file, runs for a fixed time and prints
one JSON line with its own throughput.

    python workloads.py callsoon|tasks|echo|aiohttp GOFILE SECONDS [PORTFILE]

echo and aiohttp are servers on loopback: the harness loads them (echo_client, Debian's wrk)
and measures; they print nothing of their own.
"""
import asyncio
import json
import os
import sys
import time


async def wait_go(go):
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(go):
        await asyncio.sleep(0.01)


async def callsoon(go, secs):
    """One callback per loop iteration: the worst case for iteration tracking."""
    loop = asyncio.get_running_loop()
    await wait_go(go)
    n = [0]
    done = loop.create_future()
    end = time.perf_counter() + secs

    def cb():
        n[0] += 1
        if n[0] & 1023 == 0 and time.perf_counter() >= end:
            done.set_result(None)
        else:
            loop.call_soon(cb)
    t0, c0 = time.perf_counter(), time.process_time()
    loop.call_soon(cb)
    await done
    return n[0] / (time.perf_counter() - t0), (time.process_time() - c0) * 1e6 / n[0]


async def tasks(go, secs):
    """Create and await a Task, over and over."""
    await wait_go(go)

    async def leaf():
        return 1
    n = 0
    end = time.perf_counter() + secs
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        for _ in range(256):
            await asyncio.create_task(leaf())
        n += 256
        if time.perf_counter() >= end:
            break
    return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1e6 / n


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


async def echo(go, secs, portfile):
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Echo, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(portfile + ".tmp", portfile)
    await wait_go(go)
    await asyncio.sleep(secs + 30)   # the client measures; it stops us when done
    return 0.0, 0.0


async def aiohttp_server(go, secs, portfile):
    """A real server (Debian's python3-aiohttp): GET / answers a small text body."""
    from aiohttp import web

    async def hello(request):
        return web.Response(text="hello")
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(portfile + ".tmp", portfile)
    await wait_go(go)
    await asyncio.sleep(secs + 30)   # wrk measures; the harness stops us when done
    return 0.0, 0.0


def main():
    kind, go, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if kind == "callsoon":
        rate, cpu = asyncio.run(callsoon(go, secs))
    elif kind == "tasks":
        rate, cpu = asyncio.run(tasks(go, secs))
    elif kind == "aiohttp":
        rate, cpu = asyncio.run(aiohttp_server(go, secs, sys.argv[4]))
    else:
        rate, cpu = asyncio.run(echo(go, secs, sys.argv[4]))
    # rate: operations per second of wall time; cpu_us: the process's CPU per operation
    # (user + system, BPF programs included: they run in its context)
    print(json.dumps({"workload": kind, "rate": rate, "cpu_us": cpu}), flush=True)
    # stay alive until the harness is done reading loopwatch's own figures
    time.sleep(600)


if __name__ == "__main__":
    main()
