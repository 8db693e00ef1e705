"""loopwatchd's Prometheus files through the real components: Debian's prometheus-node-exporter
(textfile collector on loopwatchd's report directory) and Debian's prometheus server scraping it
every second, both on loopback, started and stopped here. A target that makes a known number of
slow callbacks per site is run three times (two restarts, loopwatchd itself restarted once in
between); PromQL over the HTTP API must give, per site, exactly what the target made, with no
counter reset. promtool checks the metric names and dist/'s alerting rules; every expression of
dist/'s Grafana dashboard is run against the server."""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

from lwtest import DEBIAN_PYTHON, LOOPWATCH, ROOT, TARGETS
from test_daemon import Daemon, prom_samples, prom_value, wait_for

APP = os.path.join(TARGETS, "prom_app.py")
RULES = os.path.join(ROOT, "dist", "prometheus", "loopwatch-rules.yml")
DASHBOARD = os.path.join(ROOT, "dist", "grafana", "loopwatch-dashboard.json")
TOOLS = ("/usr/bin/prometheus", "/usr/bin/prometheus-node-exporter", "/usr/bin/promtool")
RUNS = [(3, 2), (2, 1), (4, 3)]     # (charge, report) callbacks of each process


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate_all(procs, timeout=10):
    """terminate each process still running, killed after timeout seconds"""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


@unittest.skipUnless(all(os.path.exists(t) for t in TOOLS),
                     "needs Debian's prometheus and prometheus-node-exporter (make deps)")
class PrometheusTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwp-")
        self.tag = "lwp-" + uuid.uuid4().hex[:12]
        self.rdir = os.path.join(self.tmp, "reports")
        os.makedirs(self.rdir)
        self.procs = []
        self.daemons = []

    def tearDown(self):
        terminate_all(self.procs)
        for d in self.daemons:
            d.kill()
        if os.environ.get("LW_KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def spawn(self, argv, name):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log")) as f:
            return f.read()

    def daemon(self, n):
        home = os.path.join(self.tmp, "d%d" % n)
        os.makedirs(home)
        d = Daemon("[target app]\ncmdline = %s\n" % self.tag, home, report_dir=self.rdir,
                   report_extra="formats = jsonl, prometheus\n")
        self.daemons.append(d)
        d.wait_ready()
        return d

    def query(self, q):
        r = http_json("http://127.0.0.1:%d/api/v1/query?%s" %
                      (self.prom_port, urllib.parse.urlencode({"query": q})))
        self.assertEqual(r["status"], "success", r)
        return r["data"]["result"]

    def by_site(self, q):
        return {r["metric"].get("site"): float(r["value"][1]) for r in self.query(q)}

    def run_target(self, d, charge, report):
        ctl = tempfile.mkdtemp(prefix="ctl-", dir=self.tmp)
        out = os.path.join(ctl, "out")
        p = subprocess.Popen([DEBIAN_PYTHON, APP, self.tag, ctl, str(charge), str(report)],
                             stdout=open(out, "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        wait_for(lambda: p.pid in d.attached("app") or p.poll() is not None, 20,
                 what="loopwatchd traces the target")
        open(os.path.join(ctl, "go-%d" % p.pid), "w").close()
        self.assertEqual(p.wait(30), 0)
        with open(out) as f:
            made = json.loads(f.read().splitlines()[-1])
        wait_for(lambda: p.pid not in d.attached("app"), 20, what="detached")
        return made, p.pid

    def test_counts_through_node_exporter_and_prometheus(self):
        """per-site slow-callback counts in Prometheus equal the target's own, across two
        restarts of the target and one of loopwatchd; no counter reset"""
        t0 = time.time()
        ne_port, self.prom_port = free_port(), free_port()
        self.spawn(["/usr/bin/prometheus-node-exporter", "--collector.disable-defaults",
                    "--collector.textfile",
                    "--collector.textfile.directory=" + self.rdir,
                    "--web.listen-address=127.0.0.1:%d" % ne_port], "node_exporter")
        conf = os.path.join(self.tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: node\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (RULES, ne_port))
        self.spawn(["/usr/bin/prometheus", "--config.file=" + conf,
                    "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
                    "--web.listen-address=127.0.0.1:%d" % self.prom_port], "prometheus")

        d = self.daemon(1)

        def scraping():
            try:
                return [r for r in self.query('loopwatch_target_processes{target="app"}')]
            except OSError:
                return None
        wait_for(scraping, 30, step=0.2, what="Prometheus scraping node_exporter: %s" %
                 self.log("prometheus")[-2000:])
        total = {"charge": 0, "report": 0}
        first = None
        last = 'loopwatch_slow_callbacks_total{target="app",site=~"charge|report"}'

        def file_counts():
            s = prom_samples(open(os.path.join(self.rdir, "app.prom")).read())
            return {k: prom_value(s, "loopwatch_slow_callbacks_total", site=k) for k in total}
        for i, (charge, report) in enumerate(RUNS):
            if i == 2:
                # loopwatchd restarted: the counters carry over from its previous file
                self.assertEqual(d.stop(), 0, d.stderr())
                d = self.daemon(2)
            made, last_pid = self.run_target(d, charge, report)
            self.assertEqual(made, {"charge": charge, "report": report})
            for k in total:
                total[k] += made[k]
            if first is None:
                first = dict(made)
            # after each process: the file, then Prometheus (a scrape a second)
            want = {k: float(v) for k, v in total.items()}
            wait_for(lambda: file_counts() == want, 15,
                     what="app.prom with %s (has %s)" % (want, file_counts()))
            wait_for(lambda: self.by_site(last) == want, 20,
                     what="Prometheus with %s (has %s)" % (want, self.by_site(last)))
        got = self.by_site(last)
        # loopwatch status (this loopwatchd saw the last process): slow callbacks apart from
        # live alerts, the exited process with its final counts
        ts = d.target_status("app")
        self.assertEqual(ts["slow_callbacks"], sum(RUNS[-1]), ts)
        self.assertIn("live_alerts", ts)
        ex = ts["exited"]
        self.assertEqual(len(ex), 1, ex)
        self.assertEqual(ex[0]["pid"], last_pid)
        self.assertEqual(ex[0]["slow_callbacks"], sum(RUNS[-1]))
        self.assertEqual(ex[0]["reason"], "target_exited")
        r = subprocess.run([LOOPWATCH, "status", d.sock],
                           capture_output=True, text=True, timeout=20)
        self.assertIn("exited in the last hour", r.stdout)
        self.assertRegex(r.stdout, r"live alerts \d+")
        print("status: slow callbacks %d, live alerts %d, exited %s" %
              (ts["slow_callbacks"], ts["live_alerts"], ex))
        print("\nslow callbacks per site, target's own count %s; Prometheus %s (%.1f s)" %
              (total, got, time.time() - t0))
        # one series per site for the whole test: no pid, no reset across the restarts
        self.assertEqual(len(self.query(last)), 2)
        self.assertEqual(self.by_site("resets(%s[10m])" % last), {"charge": 0.0, "report": 0.0})
        # the first sample was at most the first process's count (a periodic summary may
        # come mid-process); what increase() sees after it adds up to the rest (increase
        # extrapolates, so its own value is only close)
        lo = self.by_site("min_over_time(%s[10m])" % last)
        for k in want:
            self.assertTrue(0 < lo[k] <= first[k], (lo, first))
        for k in want:
            self.assertGreater(self.by_site("increase(%s[10m])" % last)[k], 0)
        self.assertEqual(self.by_site("max_over_time(%s[10m]) - min_over_time(%s[10m])" %
                                      (last, last)),
                         {k: want[k] - lo[k] for k in want})
        # the histogram agrees (default mode: slow callbacks only); site durations in buckets
        cnt = self.by_site('loopwatch_callback_duration_seconds_count{target="app",'
                           'site=~"charge|report"}')
        self.assertEqual(cnt, want)
        le = self.by_site('loopwatch_callback_duration_seconds_bucket{target="app",'
                          'site=~"charge|report",le="0.131072"}')
        self.assertEqual(le, {"charge": 0.0, "report": 0.0})
        self.assertEqual(self.by_site('loopwatch_callback_duration_seconds_bucket{target="app",'
                                      'site=~"charge|report",le="0.262144"}'),
                         {"charge": want["charge"], "report": 0.0})
        self.assertEqual(self.by_site('loopwatch_callback_duration_seconds_bucket{target="app",'
                                      'site=~"charge|report",le="0.524288"}'), want)
        self.assertEqual(self.query('loopwatch_processes_started_total{target="app"}')[0]
                         ["value"][1], str(len(RUNS)))
        self.assertEqual(self.query('loopwatch_blocking_calls_total{target="app"}')[0]
                         ["metric"]["syscall"], "clock_nanosleep")
        # host-wide counters once per host, pid on no counter
        self.assertEqual(len(self.query("loopwatch_lost_events_total")), 1)
        with_pid = {r["metric"]["__name__"] for r in
                    self.query('count by (__name__) ({__name__=~"loopwatch_.*", pid!=""})')}
        self.assertLessEqual(with_pid, {"loopwatch_process_info"})
        # the rules loaded and evaluated; every dashboard expression is valid PromQL here
        rules = http_json("http://127.0.0.1:%d/api/v1/rules" % self.prom_port)
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        self.assertIn("EventLoopSlowCallbacks", names)
        with open(DASHBOARD) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 8)
        for e in exprs:
            e = (e.replace("$__rate_interval", "1m").replace("$target", ".*")
                 .replace("$instance", ".*"))
            self.query(e)
        data = self.query('sum by (site) (rate(loopwatch_slow_callbacks_total{target=~".*"}[1m]))')
        self.assertTrue({r["metric"].get("site") for r in data} >= {"charge", "report"})
        # loopwatch report over the JSONL of both loopwatchd runs: one table for the target,
        # its three processes added up, each slow callback counted once
        r = subprocess.run([LOOPWATCH, "report", "--format", "json",
                            os.path.join(self.rdir, "app.jsonl")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep = json.loads(r.stdout)
        self.assertEqual(rep["by"], "target")
        self.assertEqual(len(rep["targets"]), 1)
        tgt = rep["targets"][0]
        self.assertEqual((tgt["target_name"], tgt["processes"]), ("app", len(RUNS)))
        self.assertEqual(tgt["slow_callbacks"], sum(total.values()))
        self.assertEqual({x["qualname"]: x["count"] for x in tgt["sites"]}, total)
        self.assertEqual(len(rep["pids"]), len(RUNS))
        # promtool: the metric and label names follow Prometheus's rules
        for name in ("app.prom", "loopwatchd.prom"):
            with open(os.path.join(self.rdir, name)) as f:
                r = subprocess.run(["/usr/bin/promtool", "check", "metrics"], stdin=f,
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, name + ": " + r.stdout + r.stderr)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertLess(time.time() - t0, 60)

    def test_promtool_rules(self):
        """dist/'s alerting rules pass promtool and use only metrics loopwatchd writes"""
        r = subprocess.run(["/usr/bin/promtool", "check", "rules", RULES], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        src = ""
        for path in glob.glob(os.path.join(ROOT, "daemon", "service", "prom*.c")):
            with open(path) as f:
                src += f.read()
        written = set(re.findall(r'"(loopwatch_[a-z_]+)"', src))
        with open(RULES) as f:
            used = set(re.findall(r"loopwatch_[a-z_]+", f.read()))
        with open(DASHBOARD) as f:
            used |= {m for m in re.findall(r"loopwatch_[a-z_]+", f.read())
                     if not m.startswith("loopwatch_callback_duration_seconds_")}
        self.assertTrue(used, "no metric used")
        self.assertEqual(used - written, set())


if __name__ == "__main__":
    unittest.main()
