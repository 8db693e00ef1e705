"""Worker recycling, as with gunicorn's --max-requests: Debian's gunicorn (python3-gunicorn)
with aiohttp's worker, and with uvicorn's (python3-uvicorn, the Done-when's case), serves an app
whose /slow request blocks the loop 30 ms in one named callback (block_loop; uvicorn's app
also flush_cache). Each worker exits after a few requests and the master forks a new one;
loopwatchd (workers_only: the master is not traced) traces each worker. The target's .prom
counter of each site's slow callbacks never goes down while workers come and go, and ends
equal to the number of slow requests the workers answered (their own count; for uvicorn, per
site, from the workers' own log lines), over at least three workers."""
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

from lwtest import DEBIAN_PYTHON, TARGETS
from test_daemon import Daemon, prom_samples, prom_value, wait_for

WORKERS = 3     # distinct workers that must have served slow requests
MAX_REQUESTS = 3


def have_gunicorn():
    return subprocess.run([DEBIAN_PYTHON, "-c", "import gunicorn, aiohttp.worker"],
                          capture_output=True).returncode == 0


def have_uvicorn():
    return subprocess.run([DEBIAN_PYTHON, "-c", "import gunicorn, uvicorn.workers"],
                          capture_output=True).returncode == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(have_gunicorn(), "needs Debian's python3-gunicorn and python3-aiohttp "
                     "(make deps)")
class Recycling(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwr-")
        self.tag = "lwr-" + uuid.uuid4().hex[:12]
        self.port = free_port()
        self.gun = None
        self.d = None

    def tearDown(self):
        if self.gun and self.gun.poll() is None:
            self.gun.terminate()
            try:
                self.gun.wait(15)
            except subprocess.TimeoutExpired:
                self.gun.kill()
                self.gun.wait()
        if self.d:
            self.d.kill()

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def count(self):
        s = prom_samples(self.d.prom("web"))
        return prom_value(s, "loopwatch_slow_callbacks_total", site="block_loop") or 0

    def test_counts_monotonic_across_recycled_workers(self):
        t0 = time.time()
        self.d = Daemon("[defaults]\nthreshold = 10ms\n[target web]\ncmdline = %s\n"
                        "workers_only = yes\n" % self.tag, self.tmp,
                        report_extra="formats = jsonl, prometheus\n")
        self.d.wait_ready()
        log = open(os.path.join(self.tmp, "gunicorn.log"), "w")
        # --name: the tag in the command line of the master and of its forked workers
        self.gun = subprocess.Popen(
            [DEBIAN_PYTHON, "-m", "gunicorn", "--name", self.tag, "-k",
             "aiohttp.GunicornWebWorker", "--workers", "1", "--max-requests", str(MAX_REQUESTS),
             "--max-requests-jitter", "0", "--graceful-timeout", "5", "--chdir", TARGETS,
             "--bind", "127.0.0.1:%d" % self.port, "gunicorn_app:app"],
            stdout=log, stderr=subprocess.STDOUT)
        made = 0
        served = {}         # worker pid -> slow requests it answered
        seen = []           # the .prom count after each slow request
        while len(served) < WORKERS:
            self.assertLess(time.time() - t0, 50, "workers served %s" % served)
            try:
                code, body = self.get("/pid")
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)     # between two workers, or not listening yet
                continue
            self.assertEqual(code, 200, body)
            w = int(body)
            # its slow requests only once loopwatchd traces it
            wait_for(lambda: w in self.d.attached("web") or self.gun.poll() is not None, 20,
                     what="worker %d traced" % w)
            try:
                code, body = self.get("/slow?pid=%d" % w)
            except (OSError, urllib.error.URLError):
                continue
            if code == 409:
                continue            # the worker was replaced in between: nothing done
            self.assertEqual(code, 200, body)
            r = json.loads(body)
            made += r["slow"]
            served[w] = served.get(w, 0) + r["slow"]
            seen.append(self.count())
        self.assertNotIn(self.gun.pid, self.d.attached("web"), "workers_only: master traced")
        self.gun.terminate()
        self.assertEqual(self.gun.wait(15), 0)
        wait_for(lambda: not self.d.attached("web"), 20, what="workers detached")
        wait_for(lambda: self.count() >= made, 10, what="%d slow callbacks in web.prom" % made)
        final = self.count()
        print("\n%d slow requests over %d recycled workers in %.1f s: web.prom counts %d "
              "(after each request: %s)" % (made, len(served), time.time() - t0, final, seen),
              file=sys.stderr)
        self.assertEqual(final, made, served)
        seen.append(final)
        self.assertEqual(seen, sorted(seen), "a counter went down: %s" % seen)
        self.assertGreaterEqual(len(served), WORKERS)


@unittest.skipUnless(have_uvicorn(), "needs Debian's python3-gunicorn and python3-uvicorn "
                     "(make deps)")
class UvicornRecycling(Recycling):
    """gunicorn -k uvicorn.workers.UvicornWorker --max-requests N on a bare ASGI app
    (tests/targets/uvicorn_app.py) with two slow sites: web.prom's per-site counters against the
    workers' own log"""
    SITES = ("block_loop", "flush_cache")

    def count_site(self, site):
        s = prom_samples(self.d.prom("web"))
        return prom_value(s, "loopwatch_slow_callbacks_total", site=site) or 0

    def test_counts_monotonic_across_recycled_workers(self):
        pass        # the aiohttp case runs once, in Recycling

    def test_uvicorn_workers(self):
        t0 = time.time()
        self.d = Daemon("[defaults]\nthreshold = 10ms\n[target web]\ncmdline = %s\n"
                        "workers_only = yes\n" % self.tag, self.tmp,
                        report_extra="formats = jsonl, prometheus\n")
        self.d.wait_ready()
        logpath = os.path.join(self.tmp, "gunicorn.log")
        self.gun = subprocess.Popen(
            [DEBIAN_PYTHON, "-m", "gunicorn", "--name", self.tag, "-k",
             "uvicorn.workers.UvicornWorker", "--workers", "1", "--max-requests",
             str(MAX_REQUESTS), "--max-requests-jitter", "0", "--graceful-timeout", "5",
             "--chdir", TARGETS, "--bind", "127.0.0.1:%d" % self.port, "uvicorn_app:app"],
            stdout=open(logpath, "w"), stderr=subprocess.STDOUT)
        served = {}                             # worker pid -> slow requests it answered
        answered = collections.Counter()        # site -> slow requests answered
        seen = []                               # the .prom counts after each slow request
        i = 0
        while len(served) < WORKERS:
            self.assertLess(time.time() - t0, 50, "workers served %s" % served)
            try:
                code, body = self.get("/pid")
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)     # between two workers, or not listening yet
                continue
            self.assertEqual(code, 200, body)
            w = int(body)
            wait_for(lambda: w in self.d.attached("web") or self.gun.poll() is not None, 20,
                     what="worker %d traced" % w)
            site = self.SITES[i % 2]
            try:
                code, body = self.get("/slow?pid=%d&site=%s" % (w, site))
            except (OSError, urllib.error.URLError):
                continue
            if code == 409:
                continue            # the worker was replaced in between: nothing done
            self.assertEqual(code, 200, body)
            i += 1
            r = json.loads(body)
            answered[site] += r["slow"]
            served[w] = served.get(w, 0) + r["slow"]
            seen.append(tuple(self.count_site(x) for x in self.SITES))
        self.assertNotIn(self.gun.pid, self.d.attached("web"), "workers_only: master traced")
        self.gun.terminate()
        self.assertEqual(self.gun.wait(15), 0)
        wait_for(lambda: not self.d.attached("web"), 20, what="workers detached")
        with open(logpath) as f:
            log = f.read()
        # the workers' own count, per site, from their log lines
        own = collections.Counter(m.group(2) for m in
                                  re.finditer(r"^lw-slow pid=(\d+) site=(\w+)$", log, re.M))
        self.assertEqual(dict(own), dict(answered), log[-3000:])
        # recycled by --max-requests: the master booted a new worker for each one that exited
        self.assertGreaterEqual(len(re.findall(r"Booting worker with pid", log)), WORKERS,
                                log[-3000:])
        want = {x: own[x] for x in self.SITES}
        wait_for(lambda: {x: self.count_site(x) for x in self.SITES} == want, 10,
                 what="web.prom with %s" % want)
        final = tuple(self.count_site(x) for x in self.SITES)
        print("\nuvicorn: %s slow requests over %d recycled workers in %.1f s: web.prom "
              "counts %s (after each request: %s)" % (dict(own), len(served),
                                                      time.time() - t0, final, seen),
              file=sys.stderr)
        seen.append(final)
        for k in range(len(self.SITES)):
            col = [c[k] for c in seen]
            self.assertEqual(col, sorted(col), "a counter went down: %s" % seen)
        self.assertGreaterEqual(len(served), WORKERS)
        self.assertTrue(all(own[x] > 0 for x in self.SITES), own)


if __name__ == "__main__":
    unittest.main()
