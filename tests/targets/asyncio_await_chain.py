"""A slow Task step held up by who awaits it: `request` awaits Task `handler`, which gathers Task
`charge` with another; `charge` blocks its loop in time.sleep() once (MARK:block) and then awaits
again, so after its slow step it is still awaited by that chain. A Task in a TaskGroup does the
same. Prints "ready <pid>", waits for GOFILE (argv[1]), then prints its own view of the chains
as JSON (child -> [(awaiter, via)], as built) and exits."""
import asyncio
import json
import os
import sys
import time

GO = sys.argv[1]
CHAINS = {"charge": [["handler", "gather"], ["request", "await"]]}
if sys.version_info >= (3, 11):
    CHAINS["tg-child"] = [["tg-parent", "taskgroup"]]


async def charge(done):
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # MARK:block
    await done.wait()


async def other(done):
    await done.wait()


async def handler(done):
    loop = asyncio.get_running_loop()
    await asyncio.gather(loop.create_task(charge(done), name="charge"),
                         loop.create_task(other(done), name="other"))


async def request(done):
    await asyncio.get_running_loop().create_task(handler(done), name="handler")


async def tg_child(done):
    await asyncio.sleep(0.5)
    time.sleep(0.2)  # MARK:block_tg
    await done.wait()


async def tg_parent(done):
    async with asyncio.TaskGroup() as tg:
        tg.create_task(tg_child(done), name="tg-child")


async def main():
    print("ready %d" % os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.01)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    ts = [loop.create_task(request(done), name="request")]
    if sys.version_info >= (3, 11):
        ts.append(loop.create_task(tg_parent(done), name="tg-parent"))
    await asyncio.sleep(1.0)
    done.set()
    await asyncio.gather(*ts)
    print(json.dumps({"chains": CHAINS}), flush=True)


asyncio.run(main())
