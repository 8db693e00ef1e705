"""Worker recycling, as with gunicorn's --max-requests: Debian's gunicorn (python3-gunicorn)
with aiohttp's worker serves an app whose /slow request blocks the loop 30 ms in one named
callback (block_loop). Each worker exits after a few requests and the master forks a new one;
loopwatchd (workers_only: the master is not traced) traces each worker. The target's .prom
counter of block_loop's slow callbacks never goes down while workers come and go, and ends
equal to the number of slow requests the workers answered (their own count), over at least
three workers."""
import json
import os
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


if __name__ == "__main__":
    unittest.main()
