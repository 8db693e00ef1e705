#!/usr/bin/env python3
"""The cost of the asyncio Task inventory (issue 14) on a process with ~10,000 Tasks
(tests/targets/asyncio_tasks.py N: its known tree plus N idle Tasks, holding still):

  - `loopwatch tasks --pid --format json`, one shot: loopwatch's CPU (user + sys of the whole
    command: start, finding the interpreter, the read, the JSON) and the read's own wall time;
  - the live modes' periodic stuck-Task inventory: loopwatch's CPU while attached with
    --stuck-every E against the same with the inventory idle (--stuck-every 1h: its one pass at
    attach falls before the measured window), interleaved rounds; per pass = the difference
    in CPU rate times E;
  - what the inventory costs a busy target: bench.py's `tasks` workload (create and await a
    Task, over and over) with loopwatch in the default mode against the same with an inventory
    every 100 ms (100 times the default rate), interleaved rounds, the target's throughput.

Neither stops the target: every read is a process_vm_readv of its memory (no ptrace, no
signal), so the target runs on while it is read; a Task that changes meanwhile is skipped.

    python3 tests/bench/stuck.py [--tasks N] [--rounds R] [--python PATH]
    (LW_LOOPWATCH=PATH measures another build)

bench.py calls run() for `make bench`; this file also runs on its own.
"""
import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPWATCH = os.environ.get("LW_LOOPWATCH") or os.path.join(ROOT, "build", "loopwatch")
TARGET = os.path.join(ROOT, "tests", "targets", "asyncio_tasks.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def start_target(py, ntasks):
    t = subprocess.Popen([py, TARGET, str(ntasks)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = t.stdout.readline()
        if not line:
            break
        if line.startswith("ready"):
            return t
    t.kill()
    raise RuntimeError("the Task-inventory target did not start")


def snapshot_once(pid):
    """(user + sys seconds of the command, read_ms, Tasks)"""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([LOOPWATCH, "tasks", "--pid", str(pid), "--format", "json"],
                       capture_output=True, text=True, timeout=60)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise RuntimeError("loopwatch tasks: %s" % r.stderr.strip())
    rec = json.loads(r.stdout)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return cpu, rec["read_ms"], rec["count"]


def live_cpu(pid, every, window, tmp):
    """loopwatch's CPU (fraction of a core) over `window` s, attached with --stuck-every"""
    rec = os.path.join(tmp, "rec-%s.jsonl" % every)
    lw = subprocess.Popen([LOOPWATCH, "--pid", str(pid), "-q", "-o", rec,
                           "--stuck-after", "1h", "--stuck-every", every],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not (os.path.exists(rec) and '"start"' in open(rec).read()):
            if time.time() > deadline or lw.poll() is not None:
                raise RuntimeError("loopwatch did not start")
            time.sleep(0.05)
        time.sleep(1.5)  # the first pass (at attach) and the attach itself are over
        c0, w0 = proc_cpu(lw.pid), time.time()
        time.sleep(window)
        return (proc_cpu(lw.pid) - c0) / (time.time() - w0)
    finally:
        lw.send_signal(signal.SIGINT)
        try:
            lw.wait(30)
        except subprocess.TimeoutExpired:
            lw.kill()
            lw.wait()
        os.unlink(rec) if os.path.exists(rec) else None


def busy_target(py, rounds, secs=3.0):
    """{"default": [rate...], "stuck": [rate...]}: bench.py's tasks workload, interleaved"""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench
    bench.LOOPWATCH = LOOPWATCH  # LW_LOOPWATCH's build, if given
    res = {"default": [], "stuck": []}
    for r in range(rounds):
        for c in (("default", "stuck") if r % 2 == 0 else ("stuck", "default")):
            res[c].append(bench.one_run(py, "tasks", c, secs, 32)["rate"])
    return res


def run(py="/usr/bin/python3.11", ntasks=10000, rounds=3, every_s=0.5, window=10.0, shots=11):
    busy = busy_target(py, rounds + 2)
    t = start_target(py, ntasks)
    tmp = tempfile.mkdtemp(prefix="lwstuck-")
    try:
        shots_res = [snapshot_once(t.pid) for _ in range(shots)]
        on, off = [], []
        for r in range(rounds):
            pair = [("on", "%gs" % every_s), ("off", "1h")]
            for name, every in (pair if r % 2 == 0 else pair[::-1]):
                (on if name == "on" else off).append(live_cpu(t.pid, every, window, tmp))
        return {"tasks": shots_res[0][2], "snapshot_cpu_s": [x[0] for x in shots_res],
                "read_ms": [x[1] for x in shots_res], "every_s": every_s, "window_s": window,
                "live_on": on, "live_off": off, "busy": busy}
    finally:
        t.kill()
        t.wait()
        os.rmdir(tmp)


def table(res, py):
    per_pass = [(a - b) * res["every_s"] for a, b in zip(res["live_on"], res["live_off"])]
    out = ["\nTask inventory on %s with %d asyncio Tasks (the target is never stopped):\n"
           % (py, res["tasks"]),
           "| measure | median | max | n |", "|---|---|---|---|",
           "| `loopwatch tasks --format json`: loopwatch CPU (user+sys, whole command) | "
           "%.0f ms | %.0f ms | %d |" % (1e3 * statistics.median(res["snapshot_cpu_s"]),
                                       1e3 * max(res["snapshot_cpu_s"]), len(res["read_ms"])),
           "| one snapshot's read (wall) | %.1f ms | %.1f ms | %d |" % (
               statistics.median(res["read_ms"]), max(res["read_ms"]), len(res["read_ms"])),
           "| live, --stuck-every %gs: loopwatch CPU | %.1f%% of a core | %.1f%% | %d |" % (
               res["every_s"], 100 * statistics.median(res["live_on"]),
               100 * max(res["live_on"]), len(res["live_on"])),
           "| live, inventory idle (--stuck-every 1h): loopwatch CPU | %.1f%% of a core | "
           "%.1f%% | %d |" % (100 * statistics.median(res["live_off"]),
                               100 * max(res["live_off"]), len(res["live_off"])),
           "| CPU per inventory pass (the difference × %gs) | %.0f ms | %.0f ms | %d |" % (
               res["every_s"], 1e3 * statistics.median(per_pass), 1e3 * max(per_pass),
               len(per_pass)),
           "", "At the default --stuck-every 10s that is %.2f%% of a core for %d Tasks."
           % (100 * statistics.median(per_pass) / 10.0, res["tasks"])]
    b = res["busy"]
    ratios = [s / d for s, d in zip(b["stuck"], b["default"])]
    out += ["", "A busy target (bench.py's `tasks` workload), default mode, with the inventory "
            "every 100 ms against without (its default 10 s: no pass in a 3 s run):", "",
            "| default | inventory every 100 ms | ratio (median) | per round |",
            "|---|---|---|---|",
            "| %.0f/s | %.0f/s | %.3f | %s |" % (
                statistics.median(b["default"]), statistics.median(b["stuck"]),
                statistics.median(ratios), " ".join("%.3f" % x for x in ratios))]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10000, help="idle Tasks beyond the known tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("stuck.py needs root (loopwatch loads BPF programs)", file=sys.stderr)
        return 1
    res = run(a.python, a.tasks, a.rounds)
    print(table(res, a.python))
    return 0


if __name__ == "__main__":
    sys.exit(main())
