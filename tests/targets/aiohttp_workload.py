"""A real third-party asyncio workload (Debian's python3-aiohttp): an aiohttp server and an
aiohttp client in one process, the client loading the server with concurrent requests, beside an
idle thread running a PollSelector loop and a socketserver thread whose handler waits in recv
with a timeout. usage: aiohttp_workload.py GOFILE

Prints "ready <pid>", waits for GOFILE, runs ~3 s and exits 0. The only blocks made on purpose
are in blocking_handler (GET /block): each prints {"announce": "blocking_handler", "ms": 150,
"tid": ...} first. Anything else loopwatch reports is a false report. The last line is
{"requests": N, "errors": 0}.
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

from aiohttp import ClientSession, web

GO = sys.argv[1]
BLOCKS = 3


async def hello(request):
    await asyncio.sleep(0.001)
    return web.json_response({"ok": True, "n": int(request.query.get("n", "0"))})


async def blocking_handler(request):
    print(json.dumps({"announce": "blocking_handler", "ms": 150,
                      "tid": threading.get_native_id()}), flush=True)
    time.sleep(0.15)  # MARK:block
    return web.Response(text="blocked")


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(0.2)
        while True:
            try:
                if not self.request.recv(100):
                    return
            except socket.timeout:
                continue


def side_threads(stop):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    c = socket.create_connection(srv.server_address)

    async def idle():
        while not stop.is_set():
            await asyncio.sleep(0.25)
    loop = asyncio.SelectorEventLoop(selectors.PollSelector())
    loop.run_until_complete(idle())
    loop.close()
    c.close()
    srv.shutdown()


async def client(port, stats):
    async with ClientSession() as s:
        sem = asyncio.Semaphore(8)

        async def one(i):
            async with sem:
                async with s.get("http://127.0.0.1:%d/hello?n=%d" % (port, i)) as r:
                    body = await r.json()
                    stats["requests"] += 1
                    if r.status != 200 or body["n"] != i:
                        stats["errors"] += 1

        t_end = time.monotonic() + 2.5
        i = 0
        blocks_done = 0
        while time.monotonic() < t_end:
            await asyncio.gather(*(one(i + k) for k in range(40)))
            i += 40
            if blocks_done < BLOCKS and i % 200 == 0:
                async with s.get("http://127.0.0.1:%d/block" % port) as r:
                    await r.text()
                blocks_done += 1
            await asyncio.sleep(0.02)
        while blocks_done < BLOCKS:
            async with s.get("http://127.0.0.1:%d/block" % port) as r:
                await r.text()
            blocks_done += 1


async def main():
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/block", blocking_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    stats = {"requests": 0, "errors": 0}
    await client(port, stats)
    await runner.cleanup()
    return stats


if __name__ == "__main__":
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        time.sleep(0.01)
    stop = threading.Event()
    side = threading.Thread(target=side_threads, args=(stop,))
    side.start()
    stats = asyncio.run(main())
    stop.set()
    side.join(5)
    print(json.dumps(stats), flush=True)
