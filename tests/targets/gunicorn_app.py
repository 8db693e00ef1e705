"""Target for the worker-recycling test: an aiohttp app served by gunicorn's aiohttp worker
(gunicorn -k aiohttp.GunicornWebWorker --max-requests N), whose workers exit after N requests
and are replaced by new forks of the master (no exec).

    GET /pid            the serving worker's pid (fast)
    GET /slow?pid=P     when served by worker P: block_loop() holds the loop 30 ms in
                        time.sleep (one slow callback), answers {"pid": P, "slow": 1} with
                        slow = 1 when it took >= 30 ms by its own clock; served by another
                        worker: 409, nothing blocked (the caller had not seen that one traced)
"""
import asyncio
import json
import os
import time

from aiohttp import web


def block_loop(fut):
    t0 = time.perf_counter()
    time.sleep(0.03)  # MARK:block
    fut.set_result(int(time.perf_counter() - t0 >= 0.03))


async def pid(request):
    return web.Response(text=str(os.getpid()))


async def slow(request):
    if request.query.get("pid") != str(os.getpid()):
        return web.Response(status=409, text=str(os.getpid()))
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(block_loop, fut)
    done = await fut
    return web.Response(text=json.dumps({"pid": os.getpid(), "slow": done}))


app = web.Application()
app.router.add_get("/pid", pid)
app.router.add_get("/slow", slow)
