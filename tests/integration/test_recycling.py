"""Worker recycling, as with gunicorn's --max-requests: Debian's gunicorn (python3-gunicorn)
with aiohttp's worker, and with uvicorn's (python3-uvicorn, the Done-when's case), serves an app
whose /slow request blocks the loop 30 ms in one named callback (block_loop; uvicorn's app
also flush_cache). Each worker exits after a few requests and the master forks a new one;
loopwatchd (workers_only: the master is not traced) traces each worker. The target's .prom
counter of each site's slow callbacks never goes down while workers come and go, and ends
equal to the number of slow requests the workers answered (their own count; for uvicorn, per
site, from the workers' own log lines), over at least three workers. The uvicorn case is also
checked through Debian's prometheus-node-exporter and prometheus (as test_prometheus does)."""
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

from lwtest import DEBIAN_PYTHON, TARGETS
from test_daemon import Daemon, prom_samples, prom_value, wait_for
from test_prometheus import TOOLS, free_port, http_json, terminate_all

WORKERS = 3     # distinct workers that must have served slow requests
MAX_REQUESTS = 3


def have_gunicorn():
    return subprocess.run([DEBIAN_PYTHON, "-c", "import gunicorn, aiohttp.worker"],
                          capture_output=True).returncode == 0


def have_uvicorn():
    return subprocess.run([DEBIAN_PYTHON, "-c", "import gunicorn, uvicorn.workers"],
                          capture_output=True).returncode == 0


class Gunicorn(unittest.TestCase):
    """a gunicorn master, loopwatchd, and the workers' HTTP port (no test of its own)"""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwr-")
        self.tag = "lwr-" + uuid.uuid4().hex[:12]
        self.port = free_port()
        self.gun = None
        self.d = None
        self.procs = []

    def tearDown(self):
        terminate_all(self.procs)
        if self.gun:
            terminate_all([self.gun], 15)
        if self.d:
            self.d.kill()

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def count(self, site="block_loop"):
        s = prom_samples(self.d.prom("web"))
        return prom_value(s, "loopwatch_slow_callbacks_total", site=site) or 0

    def start(self, worker_class, app, logpath):
        """loopwatchd (workers_only: the master is not traced), then gunicorn with one worker
        of worker_class recycled every MAX_REQUESTS requests"""
        self.d = Daemon("[defaults]\nthreshold = 10ms\n[target web]\ncmdline = %s\n"
                        "workers_only = yes\n" % self.tag, self.tmp,
                        report_extra="formats = jsonl, prometheus\n")
        self.d.wait_ready()
        # --name: the tag in the command line of the master and of its forked workers
        self.gun = subprocess.Popen(
            [DEBIAN_PYTHON, "-m", "gunicorn", "--name", self.tag, "-k", worker_class,
             "--workers", "1", "--max-requests", str(MAX_REQUESTS), "--max-requests-jitter",
             "0", "--graceful-timeout", "5", "--chdir", TARGETS,
             "--bind", "127.0.0.1:%d" % self.port, app],
            stdout=open(logpath, "w"), stderr=subprocess.STDOUT)

    def traced_worker(self, t0, served):
        """the pid of the worker that answers now, once loopwatchd traces it; None when no
        worker answered (between two workers, or not listening yet)"""
        self.assertLess(time.time() - t0, 50, "workers served %s" % served)
        try:
            code, body = self.get("/pid")
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
            return None
        self.assertEqual(code, 200, body)
        w = int(body)
        # its slow requests only once loopwatchd traces it
        wait_for(lambda: w in self.d.attached("web") or self.gun.poll() is not None, 20,
                 what="worker %d traced" % w)
        return w

    def stop(self):
        """the master never traced; it ends cleanly and every worker is detached"""
        self.assertNotIn(self.gun.pid, self.d.attached("web"), "workers_only: master traced")
        self.gun.terminate()
        self.assertEqual(self.gun.wait(15), 0)
        wait_for(lambda: not self.d.attached("web"), 20, what="workers detached")


@unittest.skipUnless(have_gunicorn(), "needs Debian's python3-gunicorn and python3-aiohttp "
                     "(make deps)")
class Recycling(Gunicorn):

    def test_counts_monotonic_across_recycled_workers(self):
        t0 = time.time()
        self.start("aiohttp.GunicornWebWorker", "gunicorn_app:app",
                   os.path.join(self.tmp, "gunicorn.log"))
        made = 0
        served = {}         # worker pid -> slow requests it answered
        seen = []           # the .prom count after each slow request
        while len(served) < WORKERS:
            w = self.traced_worker(t0, served)
            if w is None:
                continue
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
        self.stop()
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
class UvicornRecycling(Gunicorn):
    """gunicorn -k uvicorn.workers.UvicornWorker --max-requests N on a bare ASGI app
    (tests/targets/uvicorn_app.py) with two slow sites: web.prom's per-site counters against the
    workers' own log"""
    SITES = ("block_loop", "flush_cache")

    def prometheus(self):
        """node_exporter's textfile collector on loopwatchd's report directory, and a Prometheus
        server scraping it every second, both on loopback: Prometheus's port"""
        ne_port, prom_port = free_port(), free_port()
        self.procs.append(subprocess.Popen(
            ["/usr/bin/prometheus-node-exporter", "--collector.disable-defaults",
             "--collector.textfile", "--collector.textfile.directory=" + self.d.dir,
             "--web.listen-address=127.0.0.1:%d" % ne_port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        conf = os.path.join(self.tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n"
                    "scrape_configs:\n  - job_name: node\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % ne_port)
        self.procs.append(subprocess.Popen(
            ["/usr/bin/prometheus", "--config.file=" + conf,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % prom_port],
            stdout=open(os.path.join(self.tmp, "prometheus.log"), "w"), stderr=subprocess.STDOUT))
        return prom_port

    def promql(self, port, q):
        try:
            r = http_json("http://127.0.0.1:%d/api/v1/query?%s" %
                          (port, urllib.parse.urlencode({"query": q})))
        except OSError:
            return None
        return {x["metric"].get("site"): int(float(x["value"][1])) for x in r["data"]["result"]}

    def test_uvicorn_workers(self):
        t0 = time.time()
        logpath = os.path.join(self.tmp, "gunicorn.log")
        self.start("uvicorn.workers.UvicornWorker", "uvicorn_app:app", logpath)
        prom_port = self.prometheus() if all(os.path.exists(t) for t in TOOLS) else None
        if prom_port is None:
            print("\nnot checked through Prometheus: needs Debian's prometheus and "
                  "prometheus-node-exporter (make deps)", file=sys.stderr)
        served = {}                             # worker pid -> slow requests it answered
        answered = collections.Counter()        # site -> slow requests answered
        seen = []                               # the .prom counts after each slow request
        i = 0
        while len(served) < WORKERS:
            w = self.traced_worker(t0, served)
            if w is None:
                continue
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
            seen.append(tuple(self.count(x) for x in self.SITES))
        self.stop()
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
        wait_for(lambda: {x: self.count(x) for x in self.SITES} == want, 10,
                 what="web.prom with %s" % want)
        final = tuple(self.count(x) for x in self.SITES)
        if prom_port is not None:
            # through node_exporter's textfile collector and Prometheus (a scrape a second):
            # the counter's value is the count itself (one series per site for the whole run,
            # no pid label, never reset as workers come and go); increase() would extrapolate
            q = 'loopwatch_slow_callbacks_total{target="web",site=~"block_loop|flush_cache"}'
            wait_for(lambda: self.promql(prom_port, q) == want, 20,
                     what="Prometheus with %s (has %s)" % (want, self.promql(prom_port, q)))
            self.assertEqual(self.promql(prom_port, "resets(%s[5m])" % q),
                             {x: 0 for x in self.SITES})
            self.assertEqual(len(http_json("http://127.0.0.1:%d/api/v1/query?%s" % (
                prom_port, urllib.parse.urlencode({"query": q})))["data"]["result"]), 2)
            print("\nuvicorn through node_exporter and Prometheus: %s"
                  % self.promql(prom_port, q), file=sys.stderr)
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
