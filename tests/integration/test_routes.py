"""Route-level sites for Python (issue 21): a slow callback whose callback is a framework's
dispatcher (aiohttp's RequestHandler.start, library code) is counted under the innermost frame
of the application's own code on its stack, the route function (summaries, the rate limit,
Prometheus, `loopwatch report`), while the record keeps the dispatcher as its callback. A
callback that is the application's own keeps its own site."""
import json
import os
import subprocess
import unittest

from lwtest import DEBIAN_PYTHON, TARGETS, run_loopwatch, traced

APP = os.path.join(TARGETS, "aiohttp_routes.py")


def has_aiohttp():
    return os.path.exists(DEBIAN_PYTHON) and subprocess.run(
        [DEBIAN_PYTHON, "-c", "import aiohttp.web"], capture_output=True,
        timeout=60).returncode == 0


def counts(rows):
    return {r["qualname"]: r["count"] for r in rows}


@unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 not installed")
class RouteSites(unittest.TestCase):
    def run_app(self, *args, lw_args=("-q",)):
        t, lw = traced([DEBIAN_PYTHON, APP, "{GO}"] + list(args), list(lw_args), timeout=60)
        want = {}
        for x in t.truth():
            want[x["route"]] = want.get(x["route"], 0) + 1
        slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        summ = [r for r in lw.records("summary") if r["final"]][-1]
        r = run_loopwatch(["report", "--format", "json", lw.out], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)["pids"][0]["sites"]
        return want, slow, summ, rep

    def test_aiohttp_routes_are_sites(self):
        if not has_aiohttp():
            self.fail("python3-aiohttp is not installed (make check-deps installs it)")
        want, slow, summ, rep = self.run_app()
        self.assertEqual(want, {"sleepy_route": 3, "parse_route": 2})
        got = {}
        for r in slow:
            site = r["site"]
            got[site["qualname"]] = got.get(site["qualname"], 0) + 1
            self.assertEqual(os.path.realpath(site["file"]), os.path.realpath(APP), r)
            # the record keeps the dispatcher: aiohttp's code, not the route
            self.assertNotIn(r["callback"]["qualname"], want, r["callback"])
            self.assertNotEqual(os.path.realpath(r["callback"]["file"] or ""),
                                os.path.realpath(APP), r["callback"])
        self.assertEqual(got, want, [(r["callback"], r["site"]) for r in slow])
        self.assertEqual(counts(summ["sites"]), want, summ["sites"])
        self.assertEqual(counts(rep), want, rep)

    def test_precise_mode_routes_are_sites(self):
        """Precise mode too: its slow callbacks (timed by the BPF side, callback by callback)
        carry the route as their site, and the summary (which counts every callback there,
        fast ones too) counts the slow ones under their routes, not the dispatcher."""
        if not has_aiohttp():
            self.fail("python3-aiohttp is not installed (make check-deps installs it)")
        want, slow, summ, rep = self.run_app(lw_args=("--precise", "-q"))
        self.assertEqual(want, {"sleepy_route": 3, "parse_route": 2})
        self.assertEqual(summ["sites_scope"], "all", summ)
        got = {}
        for r in slow:
            self.assertEqual(r["mode"], "precise", r)
            site = r["site"]
            got[site["qualname"]] = got.get(site["qualname"], 0) + 1
            self.assertEqual(os.path.realpath(site["file"]), os.path.realpath(APP), r)
            self.assertNotIn(r["callback"]["qualname"], want, r["callback"])
        self.assertEqual(got, want, [(r["callback"], r.get("site")) for r in slow])
        rows = counts(summ["sites"])
        self.assertEqual({k: rows.get(k) for k in want}, want, summ["sites"])
        # the dispatcher's row keeps only its calls that were not moved to a route: fast ones
        disp = {r["callback"]["qualname"] for r in slow}
        self.assertEqual(len(disp), 1, disp)
        disp = disp.pop()
        for row in summ["sites"]:
            if row["qualname"] == disp:
                self.assertEqual([p for p in row["hist"] if p[0] >= 50], [], row)
                self.assertLess(row["max_ms"], 100, row)
        self.assertEqual({k: counts(rep).get(k) for k in want}, want, rep)

    def test_own_callback_keeps_its_site(self):
        want, slow, summ, rep = self.run_app("own")
        self.assertEqual(want, {"own_work": 2})
        self.assertEqual(len(slow), 2, slow)
        for r in slow:
            self.assertEqual(r["site"]["qualname"], "own_work", r)
            self.assertEqual(r["site"], r["callback"], r)
        self.assertEqual(counts(summ["sites"]), want, summ["sites"])
        self.assertEqual(counts(rep), want, rep)


if __name__ == "__main__":
    unittest.main()
