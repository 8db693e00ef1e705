"""Target for the worker-recycling test with uvicorn's workers: a bare ASGI app served by
gunicorn -k uvicorn.workers.UvicornWorker --max-requests N (Debian's python3-gunicorn and
python3-uvicorn), whose workers exit after N requests and are replaced by new forks of the
master (no exec).

    GET /pid                    the serving worker's pid (fast)
    GET /slow?pid=P&site=S      when served by worker P: the callback S (block_loop or
                                flush_cache) holds the loop 30 ms in time.sleep; answers
                                {"pid": P, "site": S, "slow": 1} with slow = 1 when it took
                                >= 30 ms by its own clock, and logs "lw-slow pid=P site=S" on
                                stderr (the gunicorn log: the workers' own count). Served by
                                another worker: 409, nothing blocked.
"""
import asyncio
import json
import os
import sys
import time
from urllib.parse import parse_qs


def _block(fut, site):
    t0 = time.perf_counter()
    time.sleep(0.03)  # MARK:block
    slow = int(time.perf_counter() - t0 >= 0.03)
    if slow:
        print("lw-slow pid=%d site=%s" % (os.getpid(), site), file=sys.stderr, flush=True)
    fut.set_result(slow)


def block_loop(fut):
    _block(fut, "block_loop")


def flush_cache(fut):
    _block(fut, "flush_cache")


SITES = {"block_loop": block_loop, "flush_cache": flush_cache}


async def respond(send, status, body):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode()})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return      # lifespan: nothing to set up
    q = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    if scope["path"] == "/pid":
        return await respond(send, 200, str(os.getpid()))
    if scope["path"] != "/slow" or q.get("site") not in SITES:
        return await respond(send, 404, "no such path")
    if q.get("pid") != str(os.getpid()):
        return await respond(send, 409, str(os.getpid()))
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(SITES[q["site"]], fut)
    done = await fut
    return await respond(send, 200, json.dumps({"pid": os.getpid(), "site": q["site"],
                                                "slow": done}))
