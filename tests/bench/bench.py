#!/usr/bin/env python3
"""make bench: throughput of asyncio workloads bare, with loopwatch attached (default mode with
each iteration probe, precise mode) and under asyncio's own debug mode, measured side by side
(interleaved rounds) in one run; plus loopwatch's own CPU and peak RSS; plus the host tax: what
loopwatch costs processes it does not trace; plus attach time (attach.py) and the cost of the
asyncio Task inventory (stuck.py). Prints Markdown tables (docs/benchmarks.md has the
method).

    python3 tests/bench/bench.py [--rounds N] [--seconds S] [--python PATH]
                                 [--only callsoon,tasks,echo] [--host-only] [--no-host]
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
HOSTLOAD = os.path.join(ROOT, "build", "targets", "hostload")
LOOPWATCHD = os.path.join(ROOT, "build", "loopwatchd")
# default: the syscall iteration probe (tp_btf/sys_exit, the default); sched: LOOPWATCH_ITERATIONS=sched
CONFIGS = ["bare", "default", "sched", "precise", "debug"]
# every run waits this long between the target's "ready" and the workload, whatever is
# attached (an attach takes 0.3-0.9 s): bare and attached runs start on equally warm processes
SETTLE_S = 1.5
HOST_WORKLOADS = ["rw", "getppid", "pingpong"]
HOST_CONFIGS = ["bare", "default", "sched", "precise", "daemon3"]
IDLE = ("import asyncio, os\n"
        "async def main():\n"
        "    print('ready', os.getpid(), flush=True)\n"
        "    while True:\n"
        "        await asyncio.sleep(0.05)\n"
        "asyncio.run(main())\n")
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


def lw_env(config):
    env = dict(os.environ)
    env["LOOPWATCH_ITERATIONS"] = "sched" if config == "sched" else "syscall"
    return env


def start_loopwatch(pid, config, rec):
    """loopwatch attached to pid in `config`'s mode; returns once its probes are live"""
    args = [LOOPWATCH, "--pid", str(pid), "-q", "-o", rec]
    if config == "precise":
        args.append("--precise")
    if config == "stuck":  # default mode with the Task inventory every 100 ms (stuck.py)
        args += ["--stuck-every", "100ms"]
    lw = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=lw_env(config))
    wait_for(lambda: os.path.exists(rec) and '"start"' in open(rec).read(), 30, "loopwatch")
    return lw


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def host_tax(py, rounds, secs):
    """Untraced processes (tests/targets/hostload.c) bare and while loopwatch traces an idle
    asyncio process (default mode with either iteration probe, precise mode), or while
    loopwatchd traces three. Interleaved rounds; one tracer setup per configuration and round,
    every workload measured under it."""
    tmp = tempfile.mkdtemp(prefix="lwhost-")
    token = "lwhosttax%d" % os.getpid()
    idles = [subprocess.Popen([py, "-c", IDLE, token], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in idles:
        p.stdout.readline()
    res = {w: {c: [] for c in HOST_CONFIGS} for w in HOST_WORKLOADS}
    cpu = {w: {c: [] for c in HOST_CONFIGS} for w in HOST_WORKLOADS}
    try:
        for r in range(rounds):
            order = HOST_CONFIGS[r % len(HOST_CONFIGS):] + HOST_CONFIGS[:r % len(HOST_CONFIGS)]
            for c in order:
                tracer = None
                rec = os.path.join(tmp, "rec-%d-%s.jsonl" % (r, c))
                if c in ("default", "sched", "precise"):
                    tracer = start_loopwatch(idles[0].pid, c, rec)
                elif c == "daemon3":
                    rdir = os.path.join(tmp, "reports-%d" % r)
                    conf = os.path.join(tmp, "lw-%d.conf" % r)
                    with open(conf, "w") as f:
                        f.write("[report]\ndir = %s\n\n[target idle]\ncmdline = %s\n"
                                % (rdir, token))
                    tracer = subprocess.Popen([LOOPWATCHD, "--config", conf],
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, env=lw_env(c))

                    def three():
                        n = 0
                        for d, _, fs in os.walk(rdir):
                            for fn in fs:
                                if fn.endswith(".jsonl"):
                                    n += open(os.path.join(d, fn)).read().count('"start"')
                        return n >= 3
                    wait_for(three, 30, "loopwatchd's three start records")
                time.sleep(0.3)
                try:
                    for w in HOST_WORKLOADS:
                        rate, per_cpu = run_hostload(w, secs)
                        res[w][c].append(rate)
                        cpu[w][c].append(per_cpu)
                        print("round %d host %-8s %-8s %12.0f/s %12.0f per CPU-s"
                              % (r + 1, w, c, rate, per_cpu), file=sys.stderr, flush=True)
                finally:
                    stop(tracer)
    finally:
        for p in idles:
            p.kill()
            p.wait()
    return {"rate": res, "per_cpu": cpu}


def run_hostload(w, secs):
    """(operations per second, operations per CPU-second of the workload's processes). The
    ping-pong pair runs pinned to one CPU: then it is bound by context switches alone; on two
    CPUs each round trip also waits for the other vCPU to leave its idle state, which swung
    the pair's rate between 16k and 111k/s from one run to the next on these VMs."""
    pin = (lambda: os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})) \
        if w == "pingpong" else None
    p = subprocess.Popen([HOSTLOAD, w, str(secs)], stdout=subprocess.PIPE, text=True,
                         preexec_fn=pin)
    out = p.stdout.read()  # hostload ends after secs
    p.stdout.close()
    # reaped here, not by Popen: wait4's usage includes the ping-pong child hostload reaped
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise RuntimeError("hostload %s failed (status %d)" % (w, p.returncode))
    ops, _, rate = out.split()
    used = ru.ru_utime + ru.ru_stime
    return float(rate), float(ops) / used if used > 0 else float("nan")


def print_host_tax(host, rounds, secs):
    names = {"bare": "bare", "default": "default (syscall)", "sched": "default (sched)",
             "precise": "precise", "daemon3": "loopwatchd, 3 targets"}
    for key, what in (("rate", "throughput"), ("per_cpu", "operations per CPU-second of the "
                                               "workload (less disturbed by other load)")):
        res = host[key]
        print("\nHost tax: untraced processes (tests/targets/hostload.c; pingpong pinned to one "
              "CPU), %d interleaved rounds of %.0f s, medians of %s; ratio = value / bare:\n"
              % (rounds, secs, what))
        print("| untraced workload | " + " | ".join(names[c] for c in HOST_CONFIGS) + " |")
        print("|---" * (len(HOST_CONFIGS) + 1) + "|")
        for w in HOST_WORKLOADS:
            med = {c: statistics.median(res[w][c]) for c in HOST_CONFIGS}
            print("| %s | " % w + " | ".join(
                "%.0f" % med[c] if c == "bare" else "%.0f (%.3f)" % (med[c], med[c] / med["bare"])
                for c in HOST_CONFIGS) + " |")
        print("\nper round (value / the same round's bare):\n")
        print("| untraced workload | " + " | ".join(names[c] for c in HOST_CONFIGS[1:]) + " |")
        print("|---" * len(HOST_CONFIGS) + "|")
        for w in HOST_WORKLOADS:
            print("| %s | " % w + " | ".join(
                " ".join("%.2f" % (x / b) for x, b in zip(res[w][c], res[w]["bare"]))
                for c in HOST_CONFIGS[1:]) + " |")


# --chroot DIR: the interpreter runs chrooted in DIR (e.g. the sid chroot's python3.14): its files
# go under DIR/tmp and it is given their paths as it sees them
CHROOT = None


def inside(path):
    return path[len(CHROOT):] if CHROOT and path.startswith(CHROOT + "/") else path


def one_run(py, workload, config, secs, conns):
    tmp = tempfile.mkdtemp(prefix="lwbench-", dir=os.path.join(CHROOT, "tmp") if CHROOT else None)
    os.chmod(tmp, 0o755)
    go = os.path.join(tmp, "go")
    portfile = os.path.join(tmp, "port")
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)
    if config == "debug":
        env["PYTHONASYNCIODEBUG"] = "1"
    out = open(os.path.join(tmp, "out"), "w+")
    err = open(os.path.join(tmp, "err"), "w+")
    t = subprocess.Popen([py, WORKLOADS, workload, inside(go), str(secs), inside(portfile)], stdout=out,
                         stderr=err, env=env)
    lw = None
    res = {"config": config}
    try:
        wait_for(lambda: "ready" in open(out.name).read(), 30, "target")
        settle_until = time.time() + SETTLE_S
        if config in ("default", "precise", "sched", "stuck"):
            rec = os.path.join(tmp, "rec.jsonl")
            t_attach = time.time()
            lw = start_loopwatch(t.pid, config, rec)
            res["attach_s"] = time.time() - t_attach
            cpu0, wall0 = proc_cpu(lw.pid), time.time()
        time.sleep(max(0.0, settle_until - time.time()))
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
    ap.add_argument("--host-rounds", type=int, default=5)
    ap.add_argument("--host-seconds", type=float, default=1.0)
    ap.add_argument("--host-only", action="store_true", help="only the host-tax section")
    ap.add_argument("--no-host", action="store_true", help="no host-tax section")
    ap.add_argument("--chroot", help="--python runs chrooted in this directory (sid's 3.14)")
    a = ap.parse_args()
    global CHROOT
    CHROOT = a.chroot.rstrip("/") if a.chroot else None
    if os.geteuid() != 0:
        print("make bench needs root (loopwatch loads BPF programs)", file=sys.stderr)
        return 1
    workloads = [] if a.host_only else a.only.split(",")
    host = None if a.no_host else host_tax(a.python, a.host_rounds, a.host_seconds)
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
    print("\nmachine: %s, %d CPUs, kernel %s; target %s; %d rounds of %.0f s, interleaved, "
          "%.1f s settle for every run\n" % (
              platform.node(), os.cpu_count(), platform.release(), a.python, a.rounds,
              a.seconds, SETTLE_S))
    if host:
        print_host_tax(host, a.host_rounds, a.host_seconds)
    if not workloads:
        return 0
    print("\nTarget cost: throughput of the traced process (median); default = syscall iteration "
          "probe (tp_btf/sys_exit), sched = LOOPWATCH_ITERATIONS=sched:\n")
    print("| workload | bare | default | sched | precise | debug | default/bare | "
          "sched/bare | precise/bare | precise/debug |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        med = {c: statistics.median(x["rate"] for x in results[w][c]) for c in CONFIGS}
        print("| %s | %.0f/s | %.0f/s | %.0f/s | %.0f/s | %.0f/s | %.3f | %.3f | %.3f | %.2f× |" % (
            w, med["bare"], med["default"], med["sched"], med["precise"], med["debug"],
            med["default"] / med["bare"], med["sched"] / med["bare"],
            med["precise"] / med["bare"], med["precise"] / med["debug"]))
    # CPU per operation: what a preemption-free run would see (robust to a shared machine)
    print("\nCPU time of the target per operation (median), and the throughput ratio it implies:\n")
    print("| workload | bare | default | sched | precise | debug | bare/default | "
          "bare/sched | bare/precise | debug/precise |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for w in workloads:
        cpu = {c: statistics.median(x["cpu_us"] for x in results[w][c]) for c in CONFIGS}
        if not all(cpu.values()):
            continue
        print("| %s | %.2f µs | %.2f µs | %.2f µs | %.2f µs | %.2f µs | %.3f | %.3f | %.3f | "
              "%.2f× |" % (
                  w, cpu["bare"], cpu["default"], cpu["sched"], cpu["precise"], cpu["debug"],
                  cpu["bare"] / cpu["default"], cpu["bare"] / cpu["sched"],
                  cpu["bare"] / cpu["precise"], cpu["debug"] / cpu["precise"]))
    print("\n| workload | mode | loopwatch CPU (median) | loopwatch peak RSS (max) | attach (median) |")
    print("|---|---|---|---|---|")
    for w in workloads:
        for c in ("default", "sched", "precise"):
            xs = results[w][c]
            print("| %s | %s | %.2f%% of a core | %.1f MB | %.2f s |" % (
                w, c, statistics.median(x["lw_cpu_pct"] for x in xs),
                max(x["lw_hwm_mb"] for x in xs), statistics.median(x["attach_s"] for x in xs)))
    print("\nSpread over the rounds (each configuration's throughput divided by bare's in the "
          "same round):\n")
    print("| workload | default/bare per round | sched/bare per round | precise/bare per round |")
    print("|---|---|---|---|")
    for w in workloads:
        per = {c: " ".join("%.3f" % (x["rate"] / b["rate"])
                           for x, b in zip(results[w][c], results[w]["bare"]))
               for c in ("default", "sched", "precise")}
        print("| %s | %s | %s | %s |" % (w, per["default"], per["sched"], per["precise"]))
    # attach time on a large target (issue 20): its own file, tests/bench/attach.py
    if not CHROOT:  # its large target imports aiohttp from the host's packages
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import attach
        att = attach.run(a.python)
        print(attach.table(att, a.python))
        results["attach"] = att
    # the stuck-Task inventory on ~10,000 Tasks (issue 14): its own file, tests/bench/stuck.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import stuck
    st = stuck.run(a.python)
    print(stuck.table(st, a.python))
    results["stuck"] = st
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"targets": results, "host": host}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
