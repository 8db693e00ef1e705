"""Precise mode (context_run probes) against real asyncio programs, on Debian's python3.11 and the
pyenv CPythons present. asyncio's own debug mode is the oracle for which callbacks were slow and
how long they took; the target's own measurements and source lines are the ground truth for the
rest."""
import os
import re
import sys
import unittest

from lwtest import (sleep_syscall, TARGETS, Loopwatch, Target, asyncio_oracle, def_line, pythons)

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")

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


class PreciseMode(unittest.TestCase):
    maxDiff = None

    def run_one(self, label, py):
        t = Target([py, SCEN, "{GO}"], env={"PYTHONASYNCIODEBUG": "1"})
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["--precise", "-t", "10ms", "-q"], tmp=t.tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(90), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        return t, lw

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

        # 1. the same set of slow callbacks as asyncio's debug mode, same durations
        self.assertEqual(len(slow), len(oracle),
                         "ours: %s\noracle: %s" % ([(s["callback"]["qualname"], s["duration_ms"])
                                                    for s in slow], oracle))
        for (rep, oms), rec in zip(oracle, slow):
            self.assertTrue(within(rec["duration_ms"], oms),
                            "%s: ours %.3f ms, asyncio %.3f ms" % (rep, rec["duration_ms"], oms))
            self.assertFalse(rec["in_progress"])
        # 2. each expected scenario is there once, named as asyncio names it
        for pattern, kind, qual, task in EXPECTED:
            hits = [i for i, (rep, _) in enumerate(oracle) if re.search(pattern, rep)]
            self.assertEqual(len(hits), 1, "oracle lines for %s: %s" % (pattern, oracle))
            cb = slow[hits[0]]["callback"]
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
        self.assertGreater(cpu["cpu_ms"], 0.8 * cpu["duration_ms"], cpu)
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
                    print("\n%s: first run disagreed (%s); running again" % (label, str(first)[:200]),
                          file=sys.stderr)
                    self.check_python(label, py)


if __name__ == "__main__":
    unittest.main()
