#!/usr/bin/env python3
"""Node.js throughput cost (issue 21): a plain Express app under autocannon, bare and with
loopwatch attached in its default mode, side by side (interleaved rounds), node started with the
flags `loopwatch check` recommends in both. Reports the medians of requests per second and of
node's CPU per request (user + system over the run / requests), and the ratios to bare.
express and autocannon come from npm, pinned by tests/npm/package-lock.json and installed without
npm by tests/npm/npmlock.py (as test_node does), once into a cache dir (later runs are offline).
Not part of `make test`; without node or the registry it prints why and exits 0.

    python3 tests/bench/express_bench.py [--rounds N] [--seconds S] [--connections C]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPWATCH = os.path.join(ROOT, "build", "loopwatch")
APP = os.path.join(ROOT, "tests", "bench", "express_bench_app.js")
sys.path.insert(0, os.path.join(ROOT, "tests", "npm"))
import npmlock  # noqa: E402  (the pinned npm packages, installed without npm)

CACHE = npmlock.CACHE
PINNED = {n: npmlock.pinned(n) for n in ("express", "autocannon")}
# the flags `loopwatch check` recommends (node_flags_advised)
FLAGS = ["--perf-basic-prof", "--interpreted-frames-native-stack", "--perf-prof"]
CONFIGS = ["bare", "default"]
SETTLE_S = 1.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def one_run(node, config, seconds, conns, tmp):
    app = subprocess.Popen([node] + FLAGS + [APP, CACHE], stdout=subprocess.PIPE, text=True,
                           cwd=tmp)
    lw = None
    try:
        line = app.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError("the app did not start: %r" % line)
        port = int(line.split()[2])
        if config == "default":
            out = os.path.join(tmp, "lw-%d.jsonl" % app.pid)
            lw = subprocess.Popen([LOOPWATCH, "--pid", str(app.pid), "-q", "-o", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.time() + 30
            while time.time() < deadline:
                if os.path.exists(out) and '"start"' in open(out).read():
                    break
                if lw.poll() is not None:
                    raise RuntimeError("loopwatch exited: " + lw.stderr.read().decode())
                time.sleep(0.05)
            else:
                raise RuntimeError("loopwatch did not start")
        time.sleep(SETTLE_S)
        c0 = proc_cpu(app.pid)
        ac = subprocess.run([node, os.path.join(CACHE, "node_modules", "autocannon",
                                                "autocannon.js"),
                             "-c", str(conns), "-d", str(seconds), "-j",
                             "http://127.0.0.1:%d/hello" % port],
                            capture_output=True, text=True, timeout=seconds + 60)
        c1 = proc_cpu(app.pid)
        res = json.loads(ac.stdout)
        n = res["requests"]["total"]
        if res.get("errors") or res.get("non2xx") or not n:
            raise RuntimeError("autocannon: %s errors, %s non-2xx, %s requests" %
                               (res.get("errors"), res.get("non2xx"), n))
        return {"rps": n / res["duration"], "cpu_us": (c1 - c0) / n * 1e6}
    finally:
        if lw:
            lw.send_signal(signal.SIGINT)
            try:
                lw.wait(15)
            except subprocess.TimeoutExpired:
                lw.kill()
        app.kill()
        app.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=10)
    a = ap.parse_args()
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        print("express bench skipped: Node.js not installed")
        return 0
    why = npmlock.install()
    if why:
        print("express bench skipped: " + why)
        return 0
    if not os.path.exists(LOOPWATCH):
        print("express bench: build loopwatch first (make all)")
        return 1
    ver = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    res = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="lw-expbench-") as tmp:
        for r in range(a.rounds):
            for c in (CONFIGS if r % 2 == 0 else CONFIGS[::-1]):
                res[c].append(one_run(node, c, a.seconds, a.connections, tmp))
    print("Express %s under autocannon %s (-c %d, %d s), node %s %s, %d interleaved rounds, "
          "medians:\n" % (PINNED["express"], PINNED["autocannon"], a.connections, a.seconds,
                          ver, " ".join(FLAGS), a.rounds))
    print("| | requests/s | (range) | node CPU per request | (range) | throughput kept |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(x["rps"] for x in res["bare"])
    for c in CONFIGS:
        rps = statistics.median(x["rps"] for x in res[c])
        cpu = statistics.median(x["cpu_us"] for x in res[c])
        print("| %s | %.0f | %.0f–%.0f | %.0f µs | %.0f–%.0f | %s |" % (
            c, rps, min(x["rps"] for x in res[c]), max(x["rps"] for x in res[c]), cpu,
            min(x["cpu_us"] for x in res[c]), max(x["cpu_us"] for x in res[c]),
            "—" if c == "bare" else "%.2f" % (rps / base)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
