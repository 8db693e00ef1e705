#!/usr/bin/env python3
"""make bench: throughput of asyncio workloads bare, with loopwatch attached (default mode with
each iteration probe, precise mode) and under asyncio's own debug mode, measured side by side
(interleaved rounds) in one run; plus loopwatch's own CPU and peak RSS; plus the host tax: what
loopwatch costs processes it does not trace; plus attach time (attach.py) and the cost of the
asyncio Task inventory (stuck.py); plus the cost of one uprobe trap on this machine
(tests/targets/trapbench.c), the reference for precise mode's cost per callback. Prints Markdown
tables (docs/benchmarks.md has the method).

    python3 tests/bench/bench.py [--rounds N] [--seconds S] [--python PATH]
                                 [--only callsoon,tasks,echo,aiohttp] [--host-only] [--no-host]
                                 [--trap-rounds N] [--no-trap]
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
TRAPBENCH = os.path.join(ROOT, "build", "targets", "trapbench")
WRK = "/usr/bin/wrk"
LOOPWATCHD = os.path.join(ROOT, "build", "loopwatchd")
# default: the default iteration probe (fentry/fexit on the kernel's poll functions where the
# kernel loads them, else sched where it has uprobe_multi links, else tp_btf/sys_exit; the start
# record says which); syscall: LOOPWATCH_ITERATIONS=syscall (tp_btf/sys_exit, the default
# before stop 17 on kernels that refuse fentry)
CONFIGS = ["bare", "default", "syscall", "precise", "debug"]
# the real server (aiohttp under wrk) as issue 16 states it: no syscall column (time). The
# call_soon chain also runs precise mode with context_run's entry + return probes (precise2,
# LOOPWATCH_PRECISE_ENTRY_ONLY=0; precise is the entry alone where the iteration probe is sched)
WORKLOAD_CONFIGS = {"aiohttp": ["bare", "default", "precise", "debug"],
                    "callsoon": CONFIGS + ["precise2"]}


def configs_of(w):
    return WORKLOAD_CONFIGS.get(w, CONFIGS)
# every run waits this long between the target's "ready" and the workload, whatever is
# attached (an attach takes 0.3-0.9 s): bare and attached runs start on equally warm processes
SETTLE_S = 1.5
HOST_WORKLOADS = ["rw", "getppid", "pingpong"]
HOST_CONFIGS = ["bare", "default", "syscall", "precise", "daemon3"]
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
    env.pop("LOOPWATCH_WAKE_HOOK", None)
    env.pop("LOOPWATCH_PRECISE_ENTRY_ONLY", None)
    if config == "precise2":  # precise with context_run's entry + return probes
        env["LOOPWATCH_PRECISE_ENTRY_ONLY"] = "0"
    if config == "wakehook":  # default, timing run-queue waits by the old sched_wakeup program
        env["LOOPWATCH_WAKE_HOOK"] = "1"
    if config == "syscall":
        env["LOOPWATCH_ITERATIONS"] = "syscall"
    else:   # loopwatch's own default choice
        env.pop("LOOPWATCH_ITERATIONS", None)
    return env


def start_loopwatch(pid, config, rec):
    """loopwatch attached to pid in `config`'s mode; returns once its probes are live"""
    args = [LOOPWATCH, "--pid", str(pid), "-q", "-o", rec]
    if config in ("precise", "precise2"):
        args.append("--precise")
    if config == "stuck":  # default mode with the Task inventory every 100 ms (stuck.py)
        args += ["--stuck-every", "100ms"]
    lw = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=lw_env(config))
    wait_for(lambda: os.path.exists(rec) and '"start"' in open(rec).read(), 30, "loopwatch")
    return lw


def start_iter_mode(rec):
    """the iteration probe loopwatch chose, from its start record ("?" when not said)"""
    for line in open(rec):
        if '"start"' in line:
            try:
                return json.loads(line).get("iterations", {}).get("mode", "?")
            except ValueError:
                return "?"
    return "?"


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
    loopwatchd traces three. Each round runs B C1 B C2 ... Ck B: every traced slot has a bare
    slot on either side, and its ratio is taken against their mean (paired), so that a drift of
    the VM's speed over a round (pingpong's bare rate moved 54k-71k/s within 30 s on a quiet
    VM) does not land on one configuration. Default mode runs every round, the others in turn:
    back-to-back bare slots of 0.6 s still differ by up to 7 % on this VM (1 s: 2-3 %), so a
    2 % goal needs a dozen pairs of 1 s slots."""
    tmp = tempfile.mkdtemp(prefix="lwhost-")
    token = "lwhosttax%d" % os.getpid()
    idles = [subprocess.Popen([py, "-c", IDLE, token], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in idles:
        p.stdout.readline()
    traced = HOST_CONFIGS[1:]
    res = {w: {c: [] for c in HOST_CONFIGS} for w in HOST_WORKLOADS}
    cpu = {w: {c: [] for c in HOST_CONFIGS} for w in HOST_WORKLOADS}
    # paired ratios: value / mean of the bare slots just before and just after
    pair = {k: {w: {c: [] for c in traced} for w in HOST_WORKLOADS} for k in ("rate", "per_cpu")}
    modes = set()   # the iteration probe loopwatch chose for "default" (fentry, syscall)
    own = {c: [] for c in traced}   # the tracer's own CPU, % of one CPU, while it traced

    def measure(c, r):
        out = {}
        for w in HOST_WORKLOADS:
            rate, per_cpu = run_hostload(w, secs)
            res[w][c].append(rate)
            cpu[w][c].append(per_cpu)
            out[w] = (rate, per_cpu)
            print("round %d host %-8s %-8s %12.0f/s %12.0f per CPU-s"
                  % (r + 1, w, c, rate, per_cpu), file=sys.stderr, flush=True)
        return out

    try:
        for r in range(rounds):
            # default mode, whose goals docs/benchmarks.md states, in every round; the other
            # configurations one a round, in turn; which of the two comes first alternates
            others = [c for c in traced if c != "default"]
            order = [c for c in traced if c == "default"]
            if others:
                order.append(others[r % len(others)])
            if r % 2:
                order.reverse()
            before = measure("bare", r)
            for c in order:
                tracer = None
                rec = os.path.join(tmp, "rec-%d-%s.jsonl" % (r, c))
                if c in ("default", "syscall", "precise", "wakehook"):
                    tracer = start_loopwatch(idles[0].pid, c, rec)
                    if c == "default":
                        modes.add(start_iter_mode(rec))
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
                    t0, s0 = time.monotonic(), sched_ns(tracer)
                    during = measure(c, r)
                    if s0 is not None:
                        s1 = sched_ns(tracer)
                        if s1 is not None:
                            own[c].append(100.0 * (s1 - s0) / 1e9 / (time.monotonic() - t0))
                finally:
                    stop(tracer)
                time.sleep(0.3)
                after = measure("bare", r)
                for w in HOST_WORKLOADS:
                    for i, k in enumerate(("rate", "per_cpu")):
                        b = (before[w][i] + after[w][i]) / 2
                        pair[k][w][c].append(during[w][i] / b if b > 0 else float("nan"))
                before = after
    finally:
        for p in idles:
            p.kill()
            p.wait()
    return {"rate": res, "per_cpu": cpu, "pair": pair, "own_cpu_pct": own,
            "default_mode": "/".join(sorted(modes))}


def sched_ns(p):
    """CPU time (ns) the process has run, from /proc/PID/schedstat; None if unreadable."""
    try:
        with open("/proc/%d/schedstat" % p.pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError, AttributeError):
        return None


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
    names = {"bare": "bare", "default": "default (%s)" % host.get("default_mode", "?"),
             "syscall": "syscall (tp_btf/sys_exit)",
             "precise": "precise", "daemon3": "loopwatchd, 3 targets",
             "wakehook": "default + sched_wakeup (LOOPWATCH_WAKE_HOOK=1)"}
    traced = HOST_CONFIGS[1:]
    for key, what in (("rate", "throughput"), ("per_cpu", "operations per CPU-second of the "
                                               "workload (less disturbed by other load)")):
        pair = host["pair"][key]
        print("\nHost tax: untraced processes (tests/targets/hostload.c; pingpong pinned to one "
              "CPU), %d rounds of slots of %.1f s, B default B other B (default every round, the "
              "others in turn); %s; each traced slot as a fraction of the mean of the bare "
              "slots on either side, median over its rounds [lowest-highest], (n rounds):\n"
              % (rounds, secs, what))
        print("| untraced workload | bare (median) | " + " | ".join(names[c] for c in traced)
              + " |")
        print("|---" * (len(traced) + 2) + "|")
        for w in HOST_WORKLOADS:
            print("| %s | %.0f | " % (w, statistics.median(host[key][w]["bare"])) + " | ".join(
                "**%.3f** [%.2f-%.2f] (%d)" % (statistics.median(pair[w][c]), min(pair[w][c]),
                                               max(pair[w][c]), len(pair[w][c]))
                if pair[w][c] else "—" for c in traced) + " |")
    own = host.get("own_cpu_pct", {})
    print("\n| the tracer's own CPU while it traced (% of one CPU, median) | " + " | ".join(
        "%.2f" % statistics.median(own[c]) if own.get(c) else "—" for c in traced) + " |")
    print("\nper round, throughput (paired ratio):\n")
    print("| untraced workload | " + " | ".join(names[c] for c in traced) + " |")
    print("|---" * (len(traced) + 1) + "|")
    for w in HOST_WORKLOADS:
        print("| %s | " % w + " | ".join(" ".join("%.2f" % x for x in host["pair"]["rate"][w][c])
                                         for c in traced) + " |")


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
        if config in ("default", "precise", "precise2", "syscall", "stuck"):
            rec = os.path.join(tmp, "rec.jsonl")
            t_attach = time.time()
            lw = start_loopwatch(t.pid, config, rec)
            res["attach_s"] = time.time() - t_attach
            res["iter_mode"] = start_iter_mode(rec)
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
        elif workload == "aiohttp":
            port = open(portfile).read().strip()
            tcpu0 = proc_cpu(t.pid)
            c = subprocess.run([WRK, "-t1", "-c%d" % conns, "-d%ds" % max(1, round(secs)),
                                "http://127.0.0.1:%s/" % port], capture_output=True, text=True,
                               timeout=secs + 60)
            tcpu = proc_cpu(t.pid) - tcpu0
            reqs, errs = wrk_result(c.stdout)
            # a few socket errors as connections close at the end are wrk's, not the server's
            if c.returncode or not reqs or errs > reqs / 100:
                raise RuntimeError("wrk failed (status %d, %d errors): %s%s" % (
                    c.returncode, errs, c.stdout, c.stderr))
            res["errors"] = errs
            res["rate"] = float(c.stdout.split("Requests/sec:")[1].split()[0])
            res["cpu_us"] = tcpu * 1e6 / reqs
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


def wrk_result(out):
    """(requests, errors) from wrk's report: "N requests in ...", "Socket errors: ...",
    "Non-2xx or 3xx responses: N" """
    reqs = errs = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) > 2 and f[1] == "requests" and f[2] == "in":
            reqs = int(f[0])
        elif line.strip().startswith("Socket errors:"):
            errs += sum(int(x.strip(",")) for x in f if x.strip(",").isdigit())
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            errs += int(f[-1])
    return reqs, errs


def trap_cost(rounds, secs):
    """ns of CPU per call of a no-op function: bare, and with a uprobe (empty BPF program) on an
    emulated first instruction (push), on a single-stepped one (mov), and an entry + return
    pair; medians over interleaved rounds (tests/targets/trapbench.c)"""
    p = subprocess.run([TRAPBENCH, str(rounds), str(secs)], capture_output=True, text=True,
                       timeout=rounds * secs * 4 + 120)
    if p.returncode:
        raise RuntimeError("trapbench failed (status %d): %s" % (p.returncode, p.stderr))
    per = {}
    for line in p.stdout.splitlines():
        v, _, cpu, wall = line.split()
        per.setdefault(v, []).append((float(cpu), float(wall)))
    return per


def print_trap(per, rounds, secs):
    print("\nOne uprobe trap on this machine (tests/targets/trapbench.c: a no-op function called "
          "over and over, a uprobe with an empty BPF program attached to it; %d interleaved "
          "rounds of %.1f s, medians; CPU per call, wall in brackets):\n" % (rounds, secs))
    print("| probe | ns per call | minus bare |")
    print("|---|---|---|")
    bare = statistics.median(c for c, _ in per["bare"])
    what = {"bare": "none", "push": "uprobe on `push %rbp` (emulated: one trap)",
            "step": "uprobe on `mov %rdi,%rax` (single-stepped: two traps)",
            "pair": "uprobe + uretprobe on the `push` function"}
    for v in ("bare", "push", "step", "pair"):
        c = statistics.median(x for x, _ in per[v])
        w = statistics.median(y for _, y in per[v])
        print("| %s | %.0f ns (%.0f) | %s |" % (what[v], c, w,
                                               "—" if v == "bare" else "%.0f ns" % (c - bare)))
    return statistics.median(c for c, _ in per["push"]) - bare


def main():
    global HOST_CONFIGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--only", default="callsoon,tasks,echo,aiohttp")
    ap.add_argument("--trap-rounds", type=int, default=5)
    ap.add_argument("--trap-seconds", type=float, default=0.5)
    ap.add_argument("--no-trap", action="store_true", help="no trap micro-benchmark")
    ap.add_argument("--no-extra", action="store_true",
                    help="no attach-time (attach.py) and Task-inventory (stuck.py) sections")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--json", help="also write raw results here")
    ap.add_argument("--host-rounds", type=int, default=12)
    ap.add_argument("--host-seconds", type=float, default=1.0)
    ap.add_argument("--host-only", action="store_true", help="only the host-tax section")
    ap.add_argument("--host-configs", default=",".join(HOST_CONFIGS),
                    help="host-tax configurations, of %s and wakehook (default mode with the "
                    "sched_wakeup program, LOOPWATCH_WAKE_HOOK=1)" % ",".join(HOST_CONFIGS))
    ap.add_argument("--no-host", action="store_true", help="no host-tax section")
    ap.add_argument("--chroot", help="--python runs chrooted in this directory (sid's 3.14)")
    a = ap.parse_args()
    global CHROOT
    CHROOT = a.chroot.rstrip("/") if a.chroot else None
    HOST_CONFIGS = ["bare"] + [c for c in a.host_configs.split(",") if c and c != "bare"]
    if os.geteuid() != 0:
        print("make bench needs root (loopwatch loads BPF programs)", file=sys.stderr)
        return 1
    workloads = [] if a.host_only else a.only.split(",")
    if "aiohttp" in workloads and not os.access(WRK, os.X_OK):
        print("aiohttp workload skipped: %s not found (apt-get install wrk, or make deps)" % WRK,
              file=sys.stderr)
        workloads.remove("aiohttp")
    trap = None if a.no_trap or a.host_only else trap_cost(a.trap_rounds, a.trap_seconds)
    host = None if a.no_host else host_tax(a.python, a.host_rounds, a.host_seconds)
    results = {w: {c: [] for c in configs_of(w)} for w in workloads}
    for r in range(a.rounds):
        for w in workloads:
            # rotate the order each round so that drift hits every configuration alike
            cf = configs_of(w)
            order = cf[r % len(cf):] + cf[:r % len(cf)]
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
    trap_ns = print_trap(trap, a.trap_rounds, a.trap_seconds) if trap else None
    if host:
        print_host_tax(host, a.host_rounds, a.host_seconds)
    trap = trap_ns
    if not workloads:
        return 0
    modes = sorted({x.get("iter_mode", "?") for w in workloads for x in results[w]["default"]})
    print("\nTarget cost: throughput of the traced process (median); default = loopwatch's own "
          "choice of iteration probe (this run: %s), syscall = LOOPWATCH_ITERATIONS=syscall; — = not "
          "run for that workload:\n" % ", ".join(modes))

    def med(w, c, key):
        xs = results[w].get(c)
        return statistics.median(x[key] for x in xs) if xs else None

    def ratio(x, y, fmt="%.3f"):
        return fmt % (x / y) if x and y else "—"

    def table(key, cell, invert):
        """one row per workload: each configuration's median of key, then the ratios of the
        pairs below as fractions of bare (or debug) kept: x/y, or y/x for a cost (invert)"""
        pairs = (("default", "bare"), ("syscall", "bare"), ("precise", "bare"),
                 ("precise", "debug"))
        print("| workload | bare | default | syscall | precise | debug | %s |" % " | ".join(
            "%s/%s" % ((y, x) if invert else (x, y)) for x, y in pairs))
        print("|---|---|---|---|---|---|---|---|---|---|")
        for w in workloads:
            m = {c: med(w, c, key) for c in CONFIGS}
            print("| %s | " % w + " | ".join(cell % m[c] if m[c] else "—" for c in CONFIGS) +
                  " | %s |" % " | ".join(
                      ratio(*((m[y], m[x]) if invert else (m[x], m[y])),
                            fmt="%.2f×" if y == "debug" else "%.3f") for x, y in pairs))

    table("rate", "%.0f/s", False)
    # CPU per operation: what a preemption-free run would see (robust to a shared machine)
    print("\nCPU time of the target per operation (median), and the throughput ratio it implies:\n")
    table("cpu_us", "%.2f µs", True)
    if trap and "callsoon" in workloads:
        # item 3 of issue 16: precise mode's extra cost per callback against one trap + 0.5 µs
        pc, dc = med("callsoon", "precise", "cpu_us"), med("callsoon", "default", "cpu_us")
        limit = trap / 1000.0 + 0.5
        print("\nPrecise mode per callback (callsoon, one callback per iteration): precise − "
              "default = %.2f µs of CPU; one emulated uprobe trap here = %.2f µs, goal ≤ trap + "
              "0.5 µs = %.2f µs: %s\n" % (pc - dc, trap / 1000.0, limit,
                                          "met" if pc - dc <= limit else "missed by %.2f µs"
                                          % (pc - dc - limit)))
        p2 = med("callsoon", "precise2", "cpu_us")
        if p2:
            print("Precise mode with context_run's entry + return probes (precise2, "
                  "LOOPWATCH_PRECISE_ENTRY_ONLY=0): precise2 − default = %.2f µs of CPU per "
                  "callback; precise2/bare throughput %s\n" % (
                      p2 - dc, ratio(med("callsoon", "bare", "cpu_us"), p2)))
    print("\n| workload | mode | loopwatch CPU (median) | loopwatch peak RSS (max) | attach (median) |")
    print("|---|---|---|---|---|")
    for w in workloads:
        for c in ("default", "syscall", "precise", "precise2"):
            xs = results[w].get(c)
            if not xs:
                continue
            print("| %s | %s | %.2f%% of a core | %.1f MB | %.2f s |" % (
                w, c, statistics.median(x["lw_cpu_pct"] for x in xs),
                max(x["lw_hwm_mb"] for x in xs), statistics.median(x["attach_s"] for x in xs)))
    print("\nSpread over the rounds (each configuration's throughput divided by bare's in the "
          "same round):\n")
    print("| workload | default/bare per round | syscall/bare per round | precise/bare per round |")
    print("|---|---|---|---|")
    for w in workloads:
        per = {c: " ".join("%.3f" % (x["rate"] / b["rate"])
                           for x, b in zip(results[w][c], results[w]["bare"]))
               if c in results[w] else "—" for c in ("default", "syscall", "precise")}
        print("| %s | %s | %s | %s |" % (w, per["default"], per["syscall"], per["precise"]))
    # attach time on a large target (issue 20): its own file, tests/bench/attach.py
    if a.no_extra:
        return 0
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
            json.dump({"targets": results, "host": host, "trap_ns": trap}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
