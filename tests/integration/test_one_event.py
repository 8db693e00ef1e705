"""One event, one warning: a target whose poll_sensor() holds the loop 12 ms in time.sleep, 200
times, traced at a 10 ms threshold. The blocking call that makes each callback slow is shown
inside the callback's warning (and linked to it in JSONL with "cause_of"), not as a warning of
its own; a live alert counts against the site's rate limit and its stall's final record is not a
second warning. And the counts: every slow call is a slow callback of poll_sensor (issue 18's
misattributed iteration: busy time all on-CPU, no callback)."""
import os
import re
import unittest

from lwtest import DEBIAN_PYTHON, TARGETS, traced

SRC = os.path.join(TARGETS, "asyncio_chatty.py")


def run(n, extra=(), spin_ms=0):
    t, lw = traced([DEBIAN_PYTHON, SRC, "{GO}", str(n), "spaced"] + ([str(spin_ms)] if spin_ms else []),
                   ["-t", "10ms"] + list(extra), timeout=120)
    truth = t.truth()[-1]
    return truth, lw


class OneEvent(unittest.TestCase):
    maxDiff = None

    def test_one_warning_per_event(self):
        """200 slow calls of one site: at most 10 warnings in full, one rate-limit line, the
        summary; no separate warning for the sleep that made each one slow"""
        truth, lw = run(200)
        self.assertEqual(truth["slow"], 200)
        out = lw.stdout().splitlines()
        heads = [l for l in out if l.startswith("WARNING")]
        site = [l for l in heads if "poll_sensor" in l]
        rate = [l for l in out if l.startswith("…") and "poll_sensor" in l]
        summary = [l for l in out if l.startswith("loopwatch final summary")]
        print("\nheadlines for 200 slow calls: %d warnings naming poll_sensor, %d rate-limit, "
              "%d summary; other warnings: %s" % (len(site), len(rate), len(summary),
                                                  [l[:80] for l in heads if l not in site]))
        # a call much slower than the site's usual (a 12 ms sleep that took 50 ms on a loaded
        # machine) is another event: the limiter lets it through marked "escalated"
        escalated = [r for r in lw.records() if r["type"] == "slow_callback"
                     and r.get("escalated")]
        self.assertLessEqual(len(site) - len(escalated), 10, site)
        self.assertEqual(len(rate), 1, rate)
        self.assertEqual(len(summary), 1)
        self.assertFalse([l for l in heads if "blocking clock_nanosleep" in l], heads)
        # the cause is inside the callback's warning
        text = lw.stdout()
        self.assertIn("blocked 0.01", text)
        self.assertIn("in clock_nanosleep", text)
        # JSONL keeps every record, linked
        recs = lw.records()
        blocking = [r for r in recs if r["type"] == "blocking_call"]
        self.assertTrue(blocking)
        self.assertEqual({r.get("cause_of") for r in blocking}, {"slow_callback"})
        alerts = [r for r in recs if r["type"] == "slow_callback" and r["in_progress"]]
        finals = [r for r in recs if r["type"] == "slow_callback" and not r["in_progress"]]
        # a live alert takes one of the site's 10 records; its stall's final record is marked
        # and printed as the end of that warning, not as a new one
        site_alerts = [r for r in alerts if (r.get("callback") or {}).get("qualname") == "poll_sensor"]
        self.assertLessEqual(len(site_alerts) + len([r for r in finals if not r.get("alerted")
                                                     and not r.get("escalated")]), 10)
        # 12 headlines at most: 10 in full, the rate-limit line, the summary; an alert that
        # could not name its callback (no stack yet) is no site's and is left out of the count
        unnamed = [l for l in heads if "loop still blocked after" in l]
        self.assertLessEqual(len(heads) - len(unnamed) - len(escalated) + len(rate) +
                             len(summary), 12, heads)
        self.assertEqual(len([r for r in finals if r.get("alerted")]),
                         len([l for l in out if re.match(r"^ +… pid \d+ tid \d+: Executing", l)]))
        # every slow call counted: written + suppressed + in the summary
        sup = sum(r["count"] for r in recs if r["type"] == "suppressed"
                  and r["record_type"] == "slow_callback")
        summ = [r for r in recs if r["type"] == "summary"][-1]
        counted = {s["qualname"]: s["count"] for s in summ["sites"]}.get("poll_sensor")
        self.assertEqual(len(finals) + sup, counted)

    def check_exact(self, truth, lw, label):
        """The summary's poll_sensor count equals the target's own count of slow calls. A slow
        call lost where loopwatch cannot see it is counted in the summary (ring buffer full:
        lost_events; this process's ring share or thread quota used up): the test accounts for
        those, and only those. Returns the records."""
        recs = lw.records()
        summ = [r for r in recs if r["type"] == "summary"][-1]
        counted = {s["qualname"]: s["count"] for s in summ["sites"]}.get("poll_sensor") or 0
        # a slow iteration with no slow callback is one the loaded machine made slow (its wait
        # for a CPU took it past the threshold) or the bug: a slept iteration counted on CPU
        orphans = [r for r in recs if r["type"] == "slow_tick" and not r["has_slow_callback"]
                   and r["busy_ms"] - r["runq_ms"] - r["gc_ms"] >= 10.0]
        lost = summ["lost_events"] + summ["fair_share_drops"] + summ["thread_quota_drops"]
        print("\n%s (target: %d slow): summary counts %s for poll_sensor (%s in all), %d slow "
              "iterations without a callback, %d dropped as no iteration, %d records lost"
              % (label, truth["slow"], counted, summ["slow_callbacks"], len(orphans),
                 summ["not_iterations"], lost))
        why = {k: summ[k] for k in ("not_iterations", "lost_events", "fair_share_drops",
                                    "thread_quota_drops", "slow_ticks")}
        self.assertEqual(orphans, [])
        if lost:
            self.assertLessEqual(counted, truth["slow"], why)
            self.assertGreaterEqual(counted, truth["slow"] - lost, why)
        else:
            self.assertEqual(counted, truth["slow"], why)
        return recs, summ

    def test_counts_exact_over_1000(self):
        """issue 18: summary counts equal the target's own across 1,000 slow calls. Failed before
        (2 to 6 in 1,000, more under load): a sleep whose switch-in no sched program saw stayed
        open until the next switch-out overwrote it, and its iteration came out as a slow_tick
        all on-CPU, nothing blocked, no stack and no callback, though the target slept 12 ms in
        it. Such a period is now closed by the thread itself, less its own runtime since it left
        the CPU (bpf/lw_sched.bpf.h off_close_missed). Then 999 of 1,000 in one CI run with no
        orphan: a live-alert look that found the thread in select() after the slow callback
        dropped its iteration as a loop that never polls (test_counts_exact_select_in_python)."""
        truth, lw = run(1000, ["-q"])
        recs, summ = self.check_exact(truth, lw, "1000 slow calls")
        # any other slow callback is one the machine made slow (this test may share 2 CPUs with
        # others): its wait for a CPU took it past the threshold; each one is in the records
        others = [r for r in recs if r["type"] == "slow_callback" and not r["in_progress"]
                  and (r.get("callback") or {}).get("qualname") != "poll_sensor"]
        sup = sum(r["count"] for r in recs if r["type"] == "suppressed"
                  and r["record_type"] == "slow_callback"
                  and (r.get("site") or {}).get("qualname") != "poll_sensor")
        for r in others:
            self.assertLess(r["duration_ms"] - r["runq_ms"] - r["gc_ms"], 10.0, r)
        counted = {s["qualname"]: s["count"] for s in summ["sites"]}.get("poll_sensor")
        self.assertEqual(summ["slow_callbacks"], counted + len(others) + sup,
                         [(r["callback"], r["duration_ms"], r["runq_ms"]) for r in others])

    def test_counts_exact_select_in_python(self):
        """issue 18: the loop's selector runs 3 ms of Python code of its own before each poll,
        after each 12 ms poll_sensor (where a loaded machine also keeps a preempted loop thread).
        A live-alert look landing there took the slow iteration for a loop whose selector never
        polls (issue 20) and dropped it, with its slow callback: 178 of 200 counted."""
        truth, lw = run(100, ["-q"], spin_ms=3)
        self.check_exact(truth, lw, "100 slow calls, select() spinning 3 ms")


if __name__ == "__main__":
    unittest.main()
