"""Precise mode (context_run probes) against real asyncio programs, on Debian's python3.11 and the
pyenv CPythons present. asyncio's own debug mode is the oracle for which callbacks were slow and
how long they took; the target's own measurements and source lines are the ground truth for the
rest."""
import datetime
import os
import re
import sys
import tempfile
import unittest

from lwtest import (sleep_syscall, TARGETS, Loopwatch, Target, asyncio_oracle, def_line, pythons,
                    traced)

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")
BUSY = os.path.join(TARGETS, "asyncio_busy.py")
OUTSIDE = os.path.join(TARGETS, "asyncio_ctxrun_outside.py")
SLOW_SELECT = os.path.join(TARGETS, "asyncio_slow_select.py")
WRAPPED_CHAIN = os.path.join(TARGETS, "asyncio_wrapped_chain.py")

# oracle repr -> (our callback kind, qualname, task name or None)
EXPECTED = [
    (r"name='sleepy'", "task", "sleepy_work", "sleepy"),
    (r"name='shorty'", "task", "short_block", "shorty"),
    (r"unnamed_block", "task", "unnamed_block", None),
    (r"<lambda>", "function", "main.<locals>.<lambda>", None),
    (r"cpu_bound", "function", "cpu_bound", None),
    (r"Ledger.flush", "method", "Ledger.flush", None),
]


def within(ours, theirs, tol_ms=1.0, rel=0.02):
    return abs(ours - theirs) <= tol_ms + rel * theirs


def nested_within(ours, theirs):
    """asyncio times Handle._run, we time the Context.run inside it: ours can only be shorter,
    by asyncio's own bookkeeping plus any preemption between its clock and our probes (a few ms
    on this shared 2-core machine under load). asyncio rounds to the millisecond."""
    return ours <= theirs + 1.0 and theirs - ours <= 2.0 + 0.04 * theirs


def align(oracle, slow, threshold_ms):
    """Pair asyncio's warnings with our records in order. A callback within 2 ms of the threshold
    may be over it by one clock and under it by the other (asyncio's includes its bookkeeping):
    such a one may be missing on either side. Returns [(oracle entry, record)] or None."""
    pairs, i, j = [], 0, 0
    border = lambda ms: ms < threshold_ms + 2.0
    while i < len(oracle) or j < len(slow):
        if i < len(oracle) and j < len(slow) and nested_within(slow[j]["duration_ms"], oracle[i][1]):
            pairs.append((oracle[i], slow[j]))
            i, j = i + 1, j + 1
        elif i < len(oracle) and border(oracle[i][1]):
            i += 1
        elif j < len(slow) and border(slow[j]["duration_ms"]):
            j += 1
        else:
            return None
    return pairs


def rfc3339(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class PreciseMode(unittest.TestCase):
    maxDiff = None

    def test_attach_to_busy_loop(self):
        """Attaching while callbacks are in flight (a loop that never waits): every run must
        time callbacks from its first moment. A callback entered between the attachment of
        the entry probe and the return probe once left the thread 'inside a callback' for good
        and precise mode blind: 5 attaches in 8 to such a loop reported nothing."""
        py = dict(pythons())["debian-3.11"]
        t = Target([py, BUSY])
        try:
            t.wait_ready()
            for run in range(3):
                lw = Loopwatch(t.pid, ["--precise", "-t", "20ms", "-d", "1.2s", "-q"],
                               tmp=tempfile.mkdtemp(prefix="lwtest-"))
                lw.wait_started()
                self.assertEqual(lw.wait(30), 0, lw.stderr())
                t0 = rfc3339(lw.records("start")[0]["ts"])
                t1 = rfc3339(lw.records("end")[0]["ts"])
                # the target's own stalls that ended inside this run (with a margin)
                truth = [x for x in t.truth() if t0 + 0.1 < x["stall_end"] < t1 - 0.1]
                self.assertGreaterEqual(len(truth), 3, "run %d: %s" % (run, t.truth()))
                slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                stalls = [r for r in slow if r["callback"]["qualname"] == "stall"]
                self.assertGreaterEqual(len(stalls), len(truth), "run %d: ours %s\ntruth %s" % (
                    run, [(r["ts"], r["duration_ms"]) for r in slow], truth))
                for r in stalls:
                    self.assertGreaterEqual(r["duration_ms"], 30.0, r)
                # and the fast ones were all timed: the chain's histogram counts thousands
                sites = {s["qualname"]: s for s in lw.records("summary")[-1]["sites"]}
                self.assertGreater(sites["main.<locals>.chain"]["count"], 1000, sites.keys())
        finally:
            t.kill()

    def run_one(self, label, py):
        return traced([py, SCEN, "{GO}"], ["--precise", "-t", "10ms", "-q"], timeout=90,
                      env={"PYTHONASYNCIODEBUG": "1"})

    def check_python(self, label, py):
        t, lw = self.run_one(label, py)
        oracle = asyncio_oracle(t.stderr())
        slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        start = lw.records("start")
        end = lw.records("end")
        self.assertEqual(len(start), 1)
        self.assertEqual(start[0]["mode"], "precise")
        self.assertEqual(start[0]["runtime"], "cpython")
        self.assertEqual(end[-1]["reason"], "target_exited")
        self.assertEqual(end[-1]["lost_events"], 0)

        # 1. the same slow callbacks as asyncio's debug mode, in the same order, same durations
        pairs = align(oracle, slow, 10.0)
        self.assertIsNotNone(pairs, "ours: %s\noracle: %s" % (
            [(s["callback"]["qualname"], s["duration_ms"]) for s in slow],
            [(rep[:50], ms) for rep, ms in oracle]))
        self.assertGreaterEqual(len(pairs), len(oracle) - 2)
        # 2. each expected scenario is there once, named as asyncio names it
        for pattern, kind, qual, task in EXPECTED:
            hits = [rec for (rep, _), rec in pairs if re.search(pattern, rep)]
            self.assertEqual(len(hits), 1, "oracle lines for %s: %s" % (pattern, oracle))
            cb = hits[0]["callback"]
            self.assertEqual(cb["kind"], kind, cb)
            self.assertEqual(cb["qualname"], qual, cb)
            self.assertEqual(os.path.realpath(cb["file"]), os.path.realpath(SCEN))
            fname = qual.split(".")[-1] if "lambda" not in qual else None
            if fname:
                self.assertEqual(cb["line"], def_line(SCEN, fname), cb)
            if task:
                self.assertEqual(cb["task_name"], task)
            elif kind == "task":
                self.assertRegex(cb["task_name"] or "", r"^Task-\d+$")
        # 3. the durations agree with the target's own clock too
        truth = {x["scenario"]: x["ms"] for x in t.truth()}
        for name, qual in (("sleepy", "sleepy_work"), ("short", "short_block"),
                           ("flush", "Ledger.flush")):
            rec = [s for s in slow if s["callback"]["qualname"] == qual][0]
            self.assertGreaterEqual(rec["duration_ms"], truth[name] - 0.5)
            self.assertLess(rec["duration_ms"], truth[name] + 5 + 0.05 * truth[name])
        # 4. where the time went: time.sleep blocks in clock_nanosleep
        rec = [s for s in slow if s["callback"]["qualname"] == "sleepy_work"][0]
        sysnames = [b["syscall"] for b in rec["blocked"]]
        self.assertIn(sleep_syscall(py), sysnames, rec)
        self.assertGreater(rec["offcpu_ms"], 250)
        cpu = [s for s in slow if s["callback"]["qualname"] == "main.<locals>.<lambda>"][0]
        # on a CPU or waiting for one (a busy machine preempts it)
        self.assertGreater(cpu["cpu_ms"] + cpu["runq_ms"], 0.8 * cpu["duration_ms"], cpu)
        self.assertEqual(cpu["blocked"], [])
        # 5. the per-site histograms count every callback: 5000 fast_cb calls, 1000 tiny tasks
        summ = lw.records("summary")[-1]
        self.assertTrue(summ["final"])
        self.assertEqual(summ["sites_scope"], "all")
        sites = {s["qualname"]: s for s in summ["sites"]}
        self.assertEqual(sites["fast_cb"]["count"], 5000, sites.get("fast_cb"))
        self.assertEqual(sites["tiny"]["count"], 1000, sites.get("tiny"))
        self.assertLess(sites["fast_cb"]["max_ms"], 10)
        for k in ("count", "total_ms", "p50_ms", "p99_ms", "max_ms"):
            self.assertIn(k, sites["sleepy_work"])
        self.assertTrue(within(sites["sleepy_work"]["max_ms"], truth["sleepy"], 5, 0.02))

    def test_context_run_outside_loop_after_loop(self):
        """A Context.run entry is a callback only in a loop. Whether it is was walked up to
        _run_once at every entry; now the answer is kept for the stack pointer, frame and code
        of an entry found in the loop (stop 18: most of the entry probe's BPF work). After the
        loop, module-level ctx.run() calls are no callbacks: the loop's slow one is timed, the
        three outside are not."""
        for label, py in [p for p in pythons() if p[0] in ("debian-3.11", "pyenv-3.8.18")] or \
                pythons()[:1]:
            with self.subTest(python=label):
                t, lw = traced([py, OUTSIDE, "{GO}"], ["--precise", "-t", "10ms", "-q"],
                               timeout=60)
                self.assertEqual(t.truth(), [{"outside_calls": 3}])
                slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                names = [r["callback"]["qualname"] for r in slow]
                self.assertIn("in_loop", names, slow)
                self.assertNotIn("outside", names, slow)
                self.assertTrue(all(r["duration_ms"] < 60 for r in slow), slow)

    def test_callback_ends_where_it_returns(self):
        """Precise mode ends a callback begun by its entry probe alone at the next callback's
        entry or the loop's poll (one trap per callback). What the loop's own code does after
        the return and before that probe is not the callback's: here its selector sleeps 200 ms
        or burns 150 ms of CPU before it polls. Stop 17 charged such time to the callback (a
        preemption after the return: 46.8 ms of run queue); now a switch-out or a CPU sample
        that finds the callback's context_run frame gone ends it there. Each callback's own
        measure is the truth; the entry + return pair (LOOPWATCH_PRECISE_ENTRY_ONLY=0) is
        checked too."""
        for label, py in [p for p in pythons() if p[0] in ("debian-3.11", "pyenv-3.8.18")] or \
                pythons()[:1]:
            for entry_only in ("1", "0"):
                with self.subTest(python=label, entry_only=entry_only):
                    t, lw = traced([py, SLOW_SELECT, "{GO}"], ["--precise", "-t", "50ms", "-q"],
                                   timeout=60,
                                   lw_env={"LOOPWATCH_PRECISE_ENTRY_ONLY": entry_only})
                    truth = [x for x in t.truth() if "cb" in x]
                    self.assertEqual(len(truth), 4, t.truth())
                    slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                    got = [(r["callback"]["qualname"], round(r["duration_ms"], 1)) for r in slow]
                    sys.stderr.write("\n%s entry_only=%s: %s vs %s\n" % (
                        label, entry_only, got, [(x["cb"], round(x["ms"], 1)) for x in truth]))
                    self.assertEqual([q for q, _ in got], [x["cb"] for x in truth], got)
                    for (q, ms), x in zip(got, truth):
                        if entry_only == "1" and x["then"] == "spin":
                            # the loop's own CPU work after the return is seen by the next
                            # CPU sample (49 Hz): up to one period late
                            self.assertTrue(x["ms"] - 1.0 <= ms <= x["ms"] + 22.0, (q, ms, x))
                        else:
                            self.assertTrue(within(ms, x["ms"]), (q, ms, x))

    def test_wrappers_of_one_code_named_apart(self):
        """functools.wraps wrappers from one decorator run the same code object under their
        own __qualname__. Entry-only precise mode reads a callback's names only when its
        function differs from the last one's (type, code and __qualname__ object): between
        many fast callbacks, and back to back, each slow wrapper is named by its own name, as
        the target measured itself, never by the last function's (a cache keyed on the code
        alone would say slow_a twice)."""
        for label, py in [p for p in pythons() if p[0] in ("debian-3.11", "pyenv-3.8.18",
                                                             "sid-3.14")] or pythons()[:1]:
            with self.subTest(python=label):
                t, lw = traced([py, WRAPPED_CHAIN, "{GO}"], ["--precise", "-t", "50ms", "-q"],
                               timeout=60)
                truth = [x["cb"] for x in t.truth() if "cb" in x]
                self.assertEqual(truth, ["slow_a", "slow_b", "slow_a", "slow_b"], t.truth())
                slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                got = [r["callback"]["qualname"] for r in slow]
                self.assertEqual(got, truth, [(r["callback"], r["duration_ms"]) for r in slow])

    def test_precise_against_asyncio_debug(self):
        pys = pythons()
        self.assertTrue(pys, "no CPython found (Debian's /usr/bin/python3.11 is required)")
        for label, py in pys:
            with self.subTest(python=label):
                # asyncio's clock runs around Handle._run, ours around the callback inside it: on
                # this shared 2-core machine a preemption between the two shows as a few ms of
                # difference. A second run must then agree; a real error repeats.
                try:
                    self.check_python(label, py)
                except AssertionError as first:
                    print("\n%s: first run disagreed (%s); running again" % (label, str(first)[:1500]),
                          file=sys.stderr)
                    self.check_python(label, py)


if __name__ == "__main__":
    unittest.main()
