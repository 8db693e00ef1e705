"""A target for the Prometheus end-to-end test: an asyncio program with two slow sites, run
once per process and then exiting (a recycled worker, a batch job).

    python prom_app.py TAG CTLDIR CHARGE REPORT

TAG is a token only this test run uses (loopwatchd matches it in the command line). Prints
"ready <pid>", waits for CTLDIR/go-<pid> (the test creates it once loopwatchd traces the process), then
runs CHARGE callbacks of charge() (each holds the loop 150 ms in time.sleep) and REPORT of
report() (300 ms), a few ms apart, prints {"charge": N, "report": M} with the counts it
made, and exits 0.
"""
import asyncio
import json
import os
import sys
import time

TAG, CTL = sys.argv[1], sys.argv[2]
CHARGE, REPORT = int(sys.argv[3]), int(sys.argv[4])
made = {"charge": 0, "report": 0}


def charge():
    time.sleep(0.15)  # MARK:charge
    made["charge"] += 1


def report():
    time.sleep(0.3)  # MARK:report
    made["report"] += 1


async def main():
    print("ready %d" % os.getpid(), flush=True)
    go = os.path.join(CTL, "go-%d" % os.getpid())
    while not os.path.exists(go):
        await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    for i in range(max(CHARGE, REPORT)):
        if i < CHARGE:
            loop.call_soon(charge)
            await asyncio.sleep(0.01)
        if i < REPORT:
            loop.call_soon(report)
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    print(json.dumps(made), flush=True)


asyncio.run(main())
