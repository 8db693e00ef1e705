"""Route-level sites (issue 21): an aiohttp app (Debian's python3-aiohttp) whose two routes block
the loop differently, called by an aiohttp client in the same process. The slow callback is
aiohttp's dispatcher (RequestHandler.start, a Task in site-packages/dist-packages); loopwatch
must count it under the route function. usage: aiohttp_routes.py GOFILE [own]

Prints "ready <pid>", waits for GOFILE, then GETs /sleepy 3 times and /parse 2 times, 100 ms
apart, and exits 0. Each route prints {"route": NAME, "ms": ...} (its own timing).
With "own": no server; the slow callbacks are the app's own coroutine (own_work), 2 of them.
"""
import asyncio
import json
import os
import sys
import time

from aiohttp import ClientSession, web

GO = sys.argv[1]
OWN = len(sys.argv) > 2 and sys.argv[2] == "own"
BIG = json.dumps([{"id": i, "name": "item%d" % i, "tags": ["a", "b"]} for i in range(60000)])


def out(**kw):
    print(json.dumps(kw), flush=True)


async def sleepy_route(request):
    t0 = time.perf_counter()
    time.sleep(0.15)  # MARK:sleep
    out(route="sleepy_route", ms=(time.perf_counter() - t0) * 1000)
    return web.Response(text="slept")


async def parse_route(request):
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 0.15:
        n += len(json.loads(BIG))  # MARK:parse
    out(route="parse_route", ms=(time.perf_counter() - t0) * 1000)
    return web.Response(text=str(n))


async def own_work():
    t0 = time.perf_counter()
    time.sleep(0.15)
    out(route="own_work", ms=(time.perf_counter() - t0) * 1000)


async def main():
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    if OWN:
        for _ in range(2):
            await asyncio.create_task(own_work())
            await asyncio.sleep(0.1)
        return
    app = web.Application()
    app.router.add_get("/sleepy", sleepy_route)
    app.router.add_get("/parse", parse_route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with ClientSession() as s:
        for path in ["/sleepy", "/parse", "/sleepy", "/parse", "/sleepy"]:
            async with s.get("http://127.0.0.1:%d%s" % (port, path)) as r:
                await r.read()
            await asyncio.sleep(0.1)
    await runner.cleanup()


asyncio.run(main())
