#!/usr/bin/env python3
"""make bench: throughput of asyncio workloads bare, with loopwatch attached (default and precise
mode) and under asyncio's own debug mode, measured side by side (interleaved rounds) in one run;
plus loopwatch's own CPU and peak RSS. Prints a Markdown table (docs/benchmarks.md has the method).

    python3 tests/bench/bench.py [--rounds N] [--seconds S] [--python PATH] [--only callsoon,tasks,echo]
"""
import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOPWATCH = os.path.join(ROOT, "build", "loopwatch")
WORKLOADS = os.path.join(ROOT, "tests", "bench", "workloads.py")
CLIENT = os.path.join(ROOT, "build", "targets", "echo_client")
CONFIGS = ["bare", "default", "precise", "debug"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def proc_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def one_run(py, workload, config, secs, conns):
    tmp = tempfile.mkdtemp(prefix="lwbench-")
    go = os.path.join(tmp, "go")
    portfile = os.path.join(tmp, "port")
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    if config == "debug":
        env["PYTHONASYNCIODEBUG"] = "1"
    out = open(os.path.join(tmp, "out"), "w+")
    err = open(os.path.join(tmp, "err"), "w+")
    t = subprocess.Popen([py, WORKLOADS, workload, go, str(secs), portfile], stdout=out,
                         stderr=err, env=env)
    lw = None
    res = {"config": config}
    try:
        wait_for(lambda: "ready" in open(out.name).read(), 30, "target")
        if config in ("default", "precise"):
            rec = os.path.join(tmp, "rec.jsonl")
            args = [LOOPWATCH, "--pid", str(t.pid), "-q", "-o", rec]
            if config == "precise":
                args.append("--precise")
            t_attach = time.time()
            lw = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: os.path.exists(rec) and '"start"' in open(rec).read(), 30,
                     "loopwatch")
            res["attach_s"] = time.time() - t_attach
            cpu0, wall0 = proc_cpu(lw.pid), time.time()
        open(go, "w").close()
        if workload == "echo":
            port = open(portfile).read().strip()
            tcpu0 = proc_cpu(t.pid)
            c = subprocess.run([CLIENT, port, str(conns), str(secs)], capture_output=True,
                               text=True, timeout=secs + 60)
            res["rate"] = float(c.stdout.split()[-1])
            reqs = float(c.stdout.split()[1])
            res["cpu_us"] = (proc_cpu(t.pid) - tcpu0) * 1e6 / reqs if reqs else 0.0
        else:
            wait_for(lambda: '"rate"' in open(out.name).read(), secs + 120, "workload result")
            out.seek(0)
            line = json.loads([l for l in out.read().splitlines() if l.startswith("{")][-1])
            res["rate"] = line["rate"]
            res["cpu_us"] = line["cpu_us"]
        if lw:
            # measured while the workload ran (the target is still alive, so is loopwatch)
            res["lw_cpu_pct"] = 100.0 * (proc_cpu(lw.pid) - cpu0) / (time.time() - wall0)
    finally:
        if t.poll() is None:
            t.kill()
            t.wait()
        if lw:
            if lw.poll() is None:
                lw.send_signal(signal.SIGINT)
            _, status, ru = os.wait4(lw.pid, 0)
            lw.returncode = status
            res["lw_hwm_mb"] = ru.ru_maxrss / 1024.0
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--only", default="callsoon,tasks,echo")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--json", help="also write raw results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("make bench needs root (loopwatch loads BPF programs)", file=sys.stderr)
        return 1
    workloads = a.only.split(",")
    results = {w: {c: [] for c in CONFIGS} for w in workloads}
    for r in range(a.rounds):
        for w in workloads:
            # rotate the order each round so that drift hits every configuration alike
            order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
            for c in order:
                res = one_run(a.python, w, c, a.seconds, a.connections)
                results[w][c].append(res)
                print("round %d %-8s %-8s %10.0f/s%s" % (
                    r + 1, w, c, res["rate"],
                    "  loopwatch cpu %.2f%% hwm %.1f MB attach %.2f s" % (
                        res["lw_cpu_pct"], res["lw_hwm_mb"], res["attach_s"])
                    if "lw_cpu_pct" in res else ""), file=sys.stderr, flush=True)
    print("\nmachine: %s, %d CPUs, kernel %s; target %s; %d rounds of %.0f s, interleaved\n" % (
        platform.node(), os.cpu_count(), platform.release(), a.python, a.rounds, a.seconds))
    print("| workload | bare | default | precise | debug | default/bare | precise/bare | "
          "precise/debug |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        med = {c: statistics.median(x["rate"] for x in results[w][c]) for c in CONFIGS}
        print("| %s | %.0f/s | %.0f/s | %.0f/s | %.0f/s | %.3f | %.3f | %.2f× |" % (
            w, med["bare"], med["default"], med["precise"], med["debug"],
            med["default"] / med["bare"], med["precise"] / med["bare"],
            med["precise"] / med["debug"]))
    # CPU per operation: what a preemption-free run would see (robust to a shared machine)
    print("\nCPU time of the target per operation (median), and the throughput ratio it implies:\n")
    print("| workload | bare | default | precise | debug | bare/default | bare/precise | "
          "debug/precise |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        cpu = {c: statistics.median(x["cpu_us"] for x in results[w][c]) for c in CONFIGS}
        if not all(cpu.values()):
            continue
        print("| %s | %.2f µs | %.2f µs | %.2f µs | %.2f µs | %.3f | %.3f | %.2f× |" % (
            w, cpu["bare"], cpu["default"], cpu["precise"], cpu["debug"],
            cpu["bare"] / cpu["default"], cpu["bare"] / cpu["precise"],
            cpu["debug"] / cpu["precise"]))
    print("\n| workload | mode | loopwatch CPU (median) | loopwatch peak RSS (max) | attach (median) |")
    print("|---|---|---|---|---|")
    for w in workloads:
        for c in ("default", "precise"):
            xs = results[w][c]
            print("| %s | %s | %.2f%% of a core | %.1f MB | %.2f s |" % (
                w, c, statistics.median(x["lw_cpu_pct"] for x in xs),
                max(x["lw_hwm_mb"] for x in xs), statistics.median(x["attach_s"] for x in xs)))
    # attach time on a large target (issue 20): its own file, tests/bench/attach.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import attach
    att = attach.run(a.python)
    print(attach.table(att, a.python))
    results["attach"] = att
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
