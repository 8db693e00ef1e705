"""Issue 20: no false reports on real programs. Each case is a small target (tests/targets/
false_reports.py) reproducing one finding; the target announces every block it makes on purpose
(a JSON line {"announce": ...}), and anything else reported is a false report."""
import json
import os
import re
import subprocess
import unittest

from lwtest import DEBIAN_PYTHON, TARGETS, Loopwatch, Target, def_line, traced
from lwtest import pythons as all_pythons


def pythons():
    """The interpreters these checks hold on: all of them, sid's 3.14/3.15 included, but not
    the sid chroot inside new namespaces (about 70 s of CI per interpreter; what differs there
    is how files are opened, which test_default and test_mapped check, not how frames read)"""
    return [(label, py) for label, py in all_pythons() if not label.endswith("-ns")]

SRC = os.path.join(TARGETS, "false_reports.py")
REPORTS = ("slow_callback", "slow_tick", "blocking_call")
MODES = (("default", []), ("precise", ["--precise"]))


def reports(lw):
    return [r for r in lw.records() if r["type"] in REPORTS]


def brief(recs):
    out = []
    for r in recs:
        cb = r.get("callback") or {}
        out.append((r["type"], r.get("tid"), r.get("in_progress"), r.get("syscall"),
                    cb.get("qualname"), r.get("duration_ms") or r.get("busy_ms"),
                    [(b.get("syscall"), b.get("ms")) for b in r.get("blocked") or []],
                    [(f.get("function"), f.get("line")) for f in (r.get("stack") or [])[:3]]))
    return out


def placeholders(rec, path="$"):
    """Fields that hold a placeholder instead of a value or nothing (issue 20: 'every record field
    is either right or absent')"""
    bad = []
    if isinstance(rec, dict):
        for k, v in rec.items():
            if isinstance(v, str) and v.startswith("syscall_4294967295"):
                bad.append(path + "." + k)
            if k == "stack" and v == []:
                bad.append(path + ".stack (empty)")
            if k == "function" and v in ("", None) and not rec.get("native"):
                bad.append(path + ".function")
            bad += placeholders(v, path + "." + k)
    elif isinstance(rec, list):
        for i, v in enumerate(rec):
            bad += placeholders(v, "%s[%d]" % (path, i))
    return bad


class FalseReports(unittest.TestCase):
    maxDiff = None

    def run_case(self, py, scenario, extra, lw_args=("-t", "100ms", "-q"), timeout=60):
        return traced([py, SRC, scenario, "{GO}"], list(lw_args) + list(extra), timeout=timeout)

    def each(self, fn):
        for label, py in pythons():
            for mode, extra in MODES:
                with self.subTest(python=label, mode=mode):
                    fn(py, extra)

    # 1 + 2: epoll loop, then PollSelector and SelectSelector loops on one thread, with a
    # socketserver thread waiting in poll() beside them: no loop blocks, nothing to report
    def test_selectors_idle_waits_are_not_blocks(self):
        def one(py, extra):
            t, lw = self.run_case(py, "selectors", extra)
            self.assertEqual(brief(reports(lw)), [])
        self.each(one)

    # 4: synchronous code between two loops is no loop iteration
    def test_sync_code_between_loops(self):
        def one(py, extra):
            t, lw = self.run_case(py, "between", extra)
            # on failure, what decided it: a stack cut short, or _run_once not learnt in time
            # (seen twice on sid's 3.14/3.15 under load, not reproduced alone)
            self.assertEqual(brief(reports(lw)), [], [
                (r["type"], r.get("stack_incomplete"), r.get("native_stack_incomplete"))
                for r in reports(lw)])
        self.each(one)

    # 4: a loop whose selector is a mock and never polls (asyncio's own unit tests), stepped by
    # hand between mock-based test code: no callback in it is slow, so nothing is reported,
    # not one 0.5 s "iteration" named after whatever was on the stack. Failed in 3 of 22
    # subtests before the CPU sampler flagged samples taken outside any loop (LW_STACK_NOLOOP):
    # live alerts on a garbage or pre-Handle._run look, a slow callback named after a mock.
    # Precise mode on sid's 3.15 then still alerted in about 1 run in 7 (0.13-0.43 s, named
    # after nothing, the look inside a mock loop's Handle._run): a callback that began after
    # the live tick read its clock passed for an old one (session_live.c lw_sess_cb_young).
    def test_mock_selector_loops(self):
        def one(py, extra):
            t, lw = self.run_case(py, "mockselector", extra)
            # on failure, the whole record and the summary's counts (CI saw a 0.13 s alert on
            # sid's 3.14 with an empty "unreadable" stack, not reproduced in 40 runs here)
            self.assertEqual(brief(reports(lw)), [], [
                (r["type"], r.get("duration_basis"), r.get("stack_incomplete"), r)
                for r in reports(lw)] + [{k: lw.records("summary")[-1].get(k) for k in
                                          ("not_iterations", "read_errors", "read_errors_by")}])
        self.each(one)

    # 8: read errors by cause, summing to the count they explain (the text summary shows them:
    # tests/unit/test_render.c)
    def test_read_errors_by_cause(self):
        py = pythons()[0][1]
        for mode, extra in MODES:
            with self.subTest(mode=mode):
                t, lw = self.run_case(py, "selectors", extra)
                summ = lw.records("summary")[-1]
                self.assertIsInstance(summ["read_errors_by"], dict, summ)
                self.assertEqual(sum(summ["read_errors_by"].values()), summ["read_errors"], summ)

    # 10: a process ending is not a blocked loop: no alert before its end
    def test_short_lived_process_no_exit_alert(self):
        def one(py, extra):
            for _ in range(3):
                t, lw = self.run_case(py, "shortlived", extra)
                self.assertEqual(brief(reports(lw)), [])
        self.each(one)

    # 11: a process that exits 0.2 s after its slow callback still gets it named
    def test_exit_soon_after_block_is_named(self):
        def one(py, extra):
            t, lw = self.run_case(py, "exitsoon", extra)
            ann = [x for x in t.truth() if "announce" in x]
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            self.assertEqual(len(slow), 1, brief(reports(lw)))
            r = slow[0]
            self.assertEqual(r["tid"], ann[0]["tid"])
            # not asserted yet: callback.task_name (null when asyncio started after the attach:
            # the stack was walked before Handle._callback's slot was learnt)
            self.assertEqual(r["callback"].get("qualname"), "blocker", r)
            self.assertTrue(r["stack"], r)
            self.assertIn("blocker", [f.get("function") for f in r["stack"]], r)
            self.assertEqual(placeholders(r), [], r)
        self.each(one)

    # 3: a Task whose coroutine blocks inside asyncio's subprocess machinery is defined where
    # its coroutine is (the target file), not at unix_events.py's _make_subprocess_transport
    def test_subprocess_task_defined_at(self):
        def one(py, extra):
            t, lw = self.run_case(py, "subprocess", extra)
            ann = [x for x in t.truth() if "announce" in x]
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]
                    and r["tid"] == ann[0]["tid"]]
            self.assertEqual(len(slow), 1, brief(reports(lw)))
            cb = slow[0]["callback"]
            self.assertEqual(cb.get("qualname"), "get_command_stdout", slow[0])
            self.assertEqual(cb.get("kind"), "task", slow[0])
            # right or absent (interface.md); here it is known, so right
            self.assertEqual((os.path.realpath(cb.get("file") or ""), cb.get("line")),
                             (os.path.realpath(SRC), def_line(SRC, "get_command_stdout")),
                             slow[0])
            # the block was where finding 3 came from: inside the subprocess transport
            self.assertIn("_make_subprocess_transport",
                          [f.get("function", "").split(".")[-1] for f in slow[0]["stack"]],
                          slow[0])
        self.each(one)

    # 5: frames are right or absent. Six functions 'work' compiled one after the other from one
    # file name, each freed before the next: the new code object takes the old one's address
    # with the same name, file and first line, but its block is on another line
    def test_reused_code_address_lines(self):
        def one(py, extra):
            t, lw = self.run_case(py, "linechurn", extra)
            ann = [x for x in t.truth() if "announce" in x]
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            self.assertEqual(len(slow), len(ann), brief(reports(lw)))
            got, want, absent = [], [], 0
            for a, r in zip(ann, slow):
                work = [f for f in r["stack"] if f.get("function") == "work"]
                self.assertEqual(placeholders(r), [], r)
                # a frame (or a line) left out is allowed only with the stack marked so: a
                # daemon that came to read 'work' after it was freed must not guess it
                if not work or "line" not in work[0]:
                    self.assertEqual(r.get("stack_incomplete"), "unreadable", r)
                    absent += 1
                    continue
                self.assertEqual(len(work), 1, r)
                want.append(a["line"])
                got.append(work[0]["line"])
            self.assertEqual(got, want, brief(slow))
            # the block lasts 3 thresholds: the live tick names it while 'work' exists
            self.assertLessEqual(absent, 1, brief(slow))
        self.each(one)

    # 11: under CPU contention (the loop thread often runnable, waiting for a CPU) >= 99.5 % of
    # the announced blocks are reported named: their callback, a stack with it, no placeholder,
    # and a sleep's time as blocked, not as CPU. A report with no stack says why (before, a
    # block spent mostly waiting for a CPU came out "stack": [], unmarked, often unnamed)
    def test_named_under_contention(self):
        py = pythons()[0][1]
        for mode, extra in MODES:
            with self.subTest(mode=mode):
                t, lw = self.run_case(py, "contention", extra, ("-t", "40ms", "--rate-limit", "0", "-q"),
                                     timeout=120)
                ann = [x for x in t.truth() if "announce" in x]
                self.assertEqual(len(ann), 200)
                tid = ann[0]["tid"]
                slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                named, bad = 0, []
                for r in slow:
                    q = (r.get("callback") or {}).get("qualname")
                    ok = (r["tid"] == tid and q in ("block_sleep", "block_spin") and
                          q in [f.get("function") for f in r.get("stack") or []] and
                          not placeholders(r))
                    if ok and q == "block_sleep":
                        ok = sum(b.get("ms", 0) for b in r.get("blocked") or []) > 30
                    if ok:
                        named += 1
                    else:
                        bad.append(r)
                unmarked = [r for r in reports(lw) if r["tid"] == tid and r.get("stack") == []
                             and not r.get("stack_incomplete")]
                self.assertEqual(brief(unmarked), [])
                self.assertGreaterEqual(named, 0.995 * len(ann), (brief(bad[:5]), bad[:2]))
                self.assertLessEqual(len(slow), len(ann), brief(bad[:5]))

    # a loop in a threading.Thread: its callbacks are the slow ones, not the thread's run()
    # (3.14+ runs Thread.run inside Context.run, the callback boundary of precise mode)
    def test_loop_in_thread(self):
        def one(py, extra):
            t, lw = self.run_case(py, "threadloop", extra)
            ann = [x for x in t.truth() if "announce" in x]
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            self.assertEqual([(r["tid"], r["callback"].get("qualname")) for r in slow],
                             [(ann[0]["tid"], "blocker")], brief(reports(lw)))
            self.assertEqual([r for r in reports(lw) if r["tid"] != ann[0]["tid"]], [])
        self.each(one)

    # 7: a loop idle in asyncio.sleep since before the attach is not busy
    def test_idle_since_before_attach(self):
        def one(py, extra):
            t, lw = self.run_case(py, "idle", extra)
            summ = lw.records("summary")[-1]
            for loop in summ.get("loops") or []:
                self.assertLess(loop["utilization"], 0.05, summ)
            self.assertEqual(brief(reports(lw)), [])
        self.each(one)


def _daemon_case():
    """issue 20 item 10: one loopwatchd tracing several processes says which process each
    failed read came from; before, every process's read_errors included the BPF side's count
    of all of them (a brand-new idle worker showed 12)"""
    import re
    import time
    from test_daemon import DaemonTest, wait_for

    class DaemonReadErrors(DaemonTest):
        def test_read_errors_per_process(self):
            d = self.daemon("[target app]\ncmdline = %s\n" % self.tag)
            d.wait_ready()
            # false_reports.py's idle loop (3 s in asyncio.sleep): the tag in its argv
            apps = [Target([DEBIAN_PYTHON, SRC, "idle", "{GO}", self.tag]) for _ in range(3)]
            try:
                for a in apps:
                    a.wait_ready()
                wait_for(lambda: d.attached("app") == sorted(a.pid for a in apps), 30,
                         what="all three attached")
                for a in apps:
                    self.assertEqual(a.wait(30), 0)
            finally:
                for a in apps:
                    a.kill()
            wait_for(lambda: {r["pid"] for r in d.records("app", "end")} >=
                     {a.pid for a in apps}, 30, what="their end records")
            self.assertEqual(d.stop(), 0, d.stderr())
            with open(os.path.join(d.dir, "loopwatchd.prom")) as f:  # as it stopped
                host = int(re.search(r"(?m)^loopwatch_read_errors_total (\d+)$",
                                     f.read()).group(1))
            bpf = {}
            for a in apps:
                summ = d.records("app", "summary", pid=a.pid)[-1]
                by = summ["read_errors_by"]
                self.assertEqual(sum(by.values()), summ["read_errors"], summ)
                bpf[a.pid] = summ["read_errors"] - by.get("userspace", 0)
            # each process's own: together no more than the instance's count of all of them
            # (which may also hold reads of processes no longer traced); each walk at attach
            # fails a read or two, so the instance's count is not 0 and the old sum (3 x it)
            # shows
            self.assertGreater(host, 0, (bpf, host))
            self.assertLessEqual(sum(bpf.values()), host, (bpf, host))
        def test_churn_blocks_named(self):
            """item 11 under churn: short-lived processes, four at a time, each blocking once
            (announced) 0.2 s before it exits, all traced by one loopwatchd: >= 99.5 % of the
            blocks (here: all 24) reported named, resolved while each process still existed"""
            d = self.daemon("[target app]\ncmdline = %s\n" % self.tag)
            d.wait_ready()
            done = []
            for wave in range(6):
                ts = [Target([DEBIAN_PYTHON, SRC, "exitsoon", "{GO}", self.tag])
                      for _ in range(4)]
                try:
                    for t in ts:
                        t.wait_ready()
                    wait_for(lambda: set(t.pid for t in ts) <= set(d.attached("app")), 30,
                             what="wave %d attached" % wave)
                    for t in ts:
                        t.go()
                    for t in ts:
                        self.assertEqual(t.wait(30), 0, t.stderr())
                finally:
                    for t in ts:
                        t.kill()
                done += ts
            wait_for(lambda: {r["pid"] for r in d.records("app", "end")} >=
                     {t.pid for t in done}, 30, what="their end records")
            self.assertEqual(d.stop(), 0, d.stderr())
            named, bad = 0, []
            for t in done:
                ann = [x for x in t.truth() if "announce" in x]
                slow = [r for r in d.records("app", "slow_callback", pid=t.pid)
                        if not r["in_progress"]]
                ok = [r for r in slow if r["tid"] == ann[0]["tid"] and
                      r["callback"].get("qualname") == "blocker" and
                      "blocker" in [f.get("function") for f in r.get("stack") or []] and
                      not placeholders(r)]
                if len(ok) == 1 and len(slow) == 1:
                    named += 1
                else:
                    bad.append((t.pid, brief(slow)))
            self.assertGreaterEqual(named, 0.995 * len(done), bad)
    return DaemonReadErrors


DaemonReadErrors = _daemon_case()


AIOHTTP = os.path.join(TARGETS, "aiohttp_workload.py")
# Debian's python3-aiohttp (and its multidict, yarl, frozenlist) run on the pyenv CPythons as
# pure Python: their C extensions are built for Debian's 3.11 only
PURE = {"AIOHTTP_NO_EXTENSIONS": "1", "MULTIDICT_NO_EXTENSIONS": "1", "YARL_NO_EXTENSIONS": "1",
        "FROZENLIST_NO_EXTENSIONS": "1"}


def aiohttp_env(py):
    if py == "/usr/bin/python3.11":
        env = {}
    else:
        env = dict(PURE, PYTHONPATH="/usr/lib/python3/dist-packages")
    full = dict(os.environ, **env)
    ok = subprocess.run([py, "-c", "import aiohttp.web"], env=full, capture_output=True,
                        timeout=60).returncode == 0
    return env if ok else None


class RealWorkload(unittest.TestCase):
    """aiohttp's client and server under load, an idle PollSelector loop thread and a
    socketserver thread: the only slow callbacks reported are the ones the workload announces"""
    maxDiff = None

    def test_aiohttp_only_announced_blocks(self):
        for label, py in pythons():
            env = aiohttp_env(py)
            if env is None:
                if py == "/usr/bin/python3.11":
                    self.fail("python3-aiohttp is not installed (make check-deps installs it)")
                continue  # Debian's aiohttp needs 3.9+ syntax: not for 3.8
            for mode, extra in MODES:
                with self.subTest(python=label, mode=mode):
                    t, lw = traced([py, AIOHTTP, "{GO}"], ["-t", "100ms", "-b", "50ms", "-q"] +
                                   extra, timeout=90, env=env)
                    truth = t.truth()
                    ann = [x for x in truth if "announce" in x]
                    stats = truth[-1]
                    self.assertEqual(stats["errors"], 0)
                    self.assertGreater(stats["requests"], 200)
                    self.assertEqual(len(ann), 3)
                    recs = reports(lw)
                    named = [r for r in recs if "blocking_handler" in
                             [f.get("function") for f in r.get("stack") or []]
                             or (r.get("callback") or {}).get("qualname") == "blocking_handler"]
                    others = [r for r in recs if r not in named]
                    self.assertEqual(brief(others), [])
                    slow = [r for r in named if r["type"] == "slow_callback"
                            and not r["in_progress"]]
                    self.assertEqual(len(slow), len(ann), brief(named))
                    for r in slow:
                        self.assertEqual(r["tid"], ann[0]["tid"])
                        self.assertEqual(placeholders(r), [], r)


if __name__ == "__main__":
    unittest.main()


def loaded_programs(pid):
    """Names of the BPF programs process pid holds (bpftool truncates names to 15 chars)"""
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True,
                         timeout=30, check=True)
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return sorted(p.get("name", "") for p in json.loads(out.stdout) if p.get("id") in ids)


def verifier_processed(stderr):
    """{program: instructions the verifier processed} from loopwatch's LW_VERIFIER_STATS lines"""
    out = {}
    for m in re.finditer(r"verifier: (\w+): .*?processed (\d+) insns", stderr):
        out[m.group(1)] = int(m.group(2))
    return out


class AttachPrograms(unittest.TestCase):
    """Finding 12: attach time is the verifier's, so loopwatch loads only the programs the run
    uses: no precise-mode probes in default mode, and one asyncio-hook program (the kind is the
    attach cookie) instead of three copies of the same stack walk."""

    def test_programs_loaded_per_mode(self):
        """... and each program is cheap to verify: the kernel's count of instructions processed
        (LW_VERIFIER_STATS=1 logs BPF_LOG_STATS per program) stays bounded. The Python stack
        walk's frame loops unrolled in every program that walks were 336k (lw_sched_switch),
        172k (the asyncio hook) and 122k (the sampler), 1.7 s of attach; with the frame reads
        as global functions verified once, 50k, 39k and 8k on Linux 6.18."""
        py = pythons()[0][1]
        for mode, extra in MODES:
            with self.subTest(mode=mode):
                t = Target([py, SRC, "idle", "{GO}"])
                try:
                    t.wait_ready()
                    lw = Loopwatch(t.pid, ["-q"] + extra, tmp=t.tmp,
                                   env={"LW_VERIFIER_STATS": "1"})
                    try:
                        lw.wait_started()
                        names = loaded_programs(lw.p.pid)
                    finally:
                        lw.p.terminate()
                        lw.wait(30)
                finally:
                    t.kill()
                processed = verifier_processed(lw.stderr())
                self.assertEqual(sorted(n[:15] for n in processed), names, lw.stderr())
                for name, n in processed.items():
                    self.assertLess(n, 100000, "%s: %d insns processed by the verifier (%s)"
                                    % (name, n, processed))
                self.assertLess(sum(processed.values()), 300000, processed)
                self.assertIn("lw_sched_switch", names)
                aio = [n for n in names if n.startswith("lw_hook_")]
                self.assertEqual(len(aio), 1, names)
                precise = [n for n in names if n.startswith(("lw_ctxrun", "lw_uv_"))]
                if mode == "default":
                    self.assertEqual(precise, [], names)
                else:
                    # sched mode: context_run's entry probe alone (one trap a callback)
                    entry_only = lw.records("start")[0]["iterations"]["mode"] == "sched"
                    self.assertEqual(len(precise), 4 if entry_only else 5, names)
                    self.assertEqual("lw_ctxrun_exit" in names, not entry_only, names)
