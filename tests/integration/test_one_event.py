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


def run(n, extra=()):
    t, lw = traced([DEBIAN_PYTHON, SRC, "{GO}", str(n), "spaced"], ["-t", "10ms"] + list(extra),
                   timeout=120)
    truth = t.truth()[-1]
    return truth, lw


class OneEvent(unittest.TestCase):
    maxDiff = None

    @unittest.skip("known: now and then a live alert for one stall is printed as a headline "
                   "beside its site's 10 (13 lines, not 12): issue 18, open")
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
        self.assertLessEqual(len(site), 10, site)
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
        self.assertLessEqual(len(heads) - len(unnamed) + len(rate) + len(summary), 12, heads)
        self.assertEqual(len([r for r in finals if r.get("alerted")]),
                         len([l for l in out if re.match(r"^ +… pid \d+ tid \d+: Executing", l)]))
        # every slow call counted: written + suppressed + in the summary
        sup = sum(r["count"] for r in recs if r["type"] == "suppressed"
                  and r["record_type"] == "slow_callback")
        summ = [r for r in recs if r["type"] == "summary"][-1]
        counted = {s["qualname"]: s["count"] for s in summ["sites"]}.get("poll_sensor")
        self.assertEqual(len(finals) + sup, counted)

    @unittest.skip("known: about 1 slow iteration in 200 loses its sleep's switch (issue 18 item 5, open)")
    def test_counts_exact_over_1000(self):
        """issue 18: summary counts equal the target's own across 1,000 slow calls. Known to
        fail: about 1 slow iteration in 200 comes out as a slow_tick with busy time all on-CPU,
        nothing blocked, no stack and no callback, though the target slept 12 ms in it. The
        blocking calls are short by the same one (199 of 200: written + suppressed and the
        summary's blocking_calls), so bpf/lw_sched.bpf.h saw neither the switch-out nor the
        switch-in of that sleep as a busy loop thread's (switch_out/switch_in return early, or
        the program did not run); not a live-alert side effect (the alerts are on other
        iterations). Remove the skip with the fix (an expectedFailure would fail the suite on a lucky run)."""
        truth, lw = run(1000, ["-q"])
        recs = lw.records()
        orphans = [r for r in recs if r["type"] == "slow_tick" and not r["has_slow_callback"]]
        summ = [r for r in recs if r["type"] == "summary"][-1]
        counted = {s["qualname"]: s["count"] for s in summ["sites"]}.get("poll_sensor")
        print("\n1000 slow calls (target: %d slow): summary counts %s for poll_sensor, %d "
              "slow iterations without a callback" % (truth["slow"], counted, len(orphans)))
        self.assertEqual(orphans, [])
        self.assertEqual(counted, truth["slow"])
        self.assertEqual(summ["slow_callbacks"], truth["slow"])


if __name__ == "__main__":
    unittest.main()
