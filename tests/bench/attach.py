#!/usr/bin/env python3
"""Attach time: from starting loopwatch to its `start` record (probes live), on a target with a
large heap and many modules loaded (aiohttp and the standard library's big packages, ~470 MB of
objects), idle in its event loop. Prints the median and the maximum per mode.

    python3 tests/bench/attach.py [--rounds N] [--python PATH] [--heap-mb MB] [--compare PATH]
    (LW_LOOPWATCH=PATH measures another build; --compare PATH measures a second build on the
    same target, interleaved round by round: the machine's load moves the figures, so two
    builds are compared in one sitting)

bench.py calls run() for `make bench`; this file also runs on its own.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPWATCH = os.environ.get("LW_LOOPWATCH") or os.path.join(ROOT, "build", "loopwatch")

TARGET = r"""
import asyncio, sys
mods = []
for m in ("aiohttp", "aiohttp.web", "email.mime.multipart", "http.server", "xml.etree.ElementTree",
          "json", "decimal", "unittest.mock", "logging.handlers", "concurrent.futures",
          "multiprocessing", "sqlite3", "ssl", "tarfile", "zipfile", "argparse", "csv"):
    try:
        __import__(m)
        mods.append(m)
    except ImportError:
        pass
heap = [bytes(1000) + i.to_bytes(4, "little") for i in range(int(sys.argv[1]) * 1000)]
async def main():
    print("ready", len(mods), flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def start_target(py, heap_mb):
    t = subprocess.Popen([py, "-c", TARGET, str(heap_mb)], stdout=subprocess.PIPE, text=True)
    line = t.stdout.readline()
    if not line.startswith("ready"):
        t.kill()
        raise RuntimeError("the attach-time target did not start: %r" % line)
    return t


def attach_once(pid, precise, timeout=20.0, loopwatch=None):
    """Seconds from exec of loopwatch to its start record on stdout."""
    cmd = [loopwatch or LOOPWATCH, "--pid", str(pid), "--format", "json", "-q"]
    if precise:
        cmd.append("--precise")
    t0 = time.monotonic()
    lw = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            line = lw.stdout.readline()
            if not line:
                raise RuntimeError("loopwatch exited before its start record: %s" %
                                   lw.stderr.read().strip())
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("type") == "start":
                return time.monotonic() - t0
        raise RuntimeError("no start record within %.0f s" % timeout)
    finally:
        lw.terminate()
        try:
            lw.wait(10)
        except subprocess.TimeoutExpired:
            lw.kill()
            lw.wait()


def run(py="/usr/bin/python3.11", rounds=7, heap_mb=400, modes=("default", "precise"),
        builds=None):
    """{mode: [seconds, ...]}; the target is started once and attached to `rounds` times.
    builds: {label: loopwatch path} to compare, keys "mode label" then, alternating which build
    goes first from round to round."""
    t = start_target(py, heap_mb)
    try:
        with open("/proc/%d/status" % t.pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        if not builds:
            res = {m: [] for m in modes}
            for _ in range(rounds):
                for m in modes:
                    res[m].append(attach_once(t.pid, m == "precise"))
        else:
            labels = list(builds)
            res = {"%s %s" % (m, b): [] for m in modes for b in labels}
            for r in range(rounds):
                for m in modes:
                    for b in (labels if r % 2 == 0 else labels[::-1]):
                        res["%s %s" % (m, b)].append(
                            attach_once(t.pid, m == "precise", loopwatch=builds[b]))
        res["target_rss_mb"] = rss
        return res
    finally:
        t.kill()
        t.wait()


def table(res, py):
    out = ["\nAttach time (loopwatch start to its start record), target %s with %.0f MB RSS, "
           "aiohttp and many modules loaded:\n" % (py, res["target_rss_mb"]),
           "| mode | median | max | n |", "|---|---|---|---|"]
    for m, xs in res.items():
        if m == "target_rss_mb":
            continue
        out.append("| %s | %.3f s | %.3f s | %d |" % (m, statistics.median(xs), max(xs), len(xs)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--heap-mb", type=int, default=400)
    ap.add_argument("--compare", metavar="PATH",
                    help="another loopwatch build, measured interleaved with this one")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("attach.py needs root (loopwatch loads BPF programs)", file=sys.stderr)
        return 1
    builds = None
    if a.compare:
        builds = {"this": LOOPWATCH, "other (%s)" % a.compare: a.compare}
    res = run(a.python, a.rounds, a.heap_mb, builds=builds)
    print(table(res, a.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
