"""`loopwatch report` on records from real asyncio programs: a default-mode run of a loop blocked
by a FIFO read and a TCP recv (periodic and final summaries) and a precise-mode run of the
scenarios target, both in one file. Text, JSON, Chrome trace, folded stacks and the HTML page
(rendered by headless Chromium); filters, rotated files, a cut-short last line, bad usage."""
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib
from datetime import datetime, timedelta, timezone

from lwtest import (DEBIAN_PYTHON, TARGETS, Loopwatch, Target, def_line, marks, need_root,
                    run_loopwatch)

BLOCKING = os.path.join(TARGETS, "asyncio_blocking.py")
SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")
M = marks(BLOCKING)


def parse_ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def epoch_us(s):
    return parse_ts(s).timestamp() * 1e6


def read_png(path):
    """(width, height, [row bytes]) of an 8-bit RGB/RGBA PNG: zlib + struct, no PIL."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and not interlace, hdr
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        ft, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ft == 1:
                line[x] = (line[x] + a) & 255
            elif ft == 2:
                line[x] = (line[x] + b) & 255
            elif ft == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.classes, self.tags, self.external = set(), set(), {}, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if a.get("id"):
            self.ids.add(a["id"])
        for c in (a.get("class") or "").split():
            self.classes.add((tag, c))
        for k in ("src", "href"):
            if a.get(k):
                self.external.append((tag, k, a[k]))
        if tag in ("script", "link", "iframe", "img", "object", "embed"):
            self.external.append((tag, "", ""))


@unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 is not installed")
class Report(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not need_root():
            raise unittest.SkipTest("needs root")
        cls.tmp = tempfile.mkdtemp(prefix="lwtest-report-")
        cls.file = os.path.join(cls.tmp, "records.jsonl")
        # default mode, one-second summaries: a FIFO read and a TCP recv block the loop
        t = Target([DEBIAN_PYTHON, BLOCKING, "{GO}"], env={"LW_SCENARIOS": "fifo,recv"})
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["-t", "50ms", "-q", "--summary-interval", "300ms"],
                           tmp=tempfile.mkdtemp(dir=cls.tmp))
            lw.wait_started()
            t.go()
            assert t.wait(60) == 0, t.stderr()
            assert lw.wait(30) == 0, lw.stderr()
        finally:
            t.kill()
        cls.default_pid, cls.truth = t.pid, {x["scenario"]: x for x in t.truth()}
        parts = [lw.out]
        # precise mode, the same file: every callback counted in its summaries
        t = Target([DEBIAN_PYTHON, SCEN, "{GO}"])
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["--precise", "-t", "20ms", "-q"], tmp=tempfile.mkdtemp(dir=cls.tmp))
            lw.wait_started()
            t.go()
            assert t.wait(60) == 0, t.stderr()
            assert lw.wait(30) == 0, lw.stderr()
        finally:
            t.kill()
        cls.precise_pid = t.pid
        parts.append(lw.out)
        # one file, as a daemon writes for several processes
        with open(cls.file, "w") as out:
            for p in parts:
                with open(p) as f:
                    out.write(f.read())
        with open(cls.file) as f:
            cls.records = [json.loads(line) for line in f if line.strip()]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", "/nonexistent"), ignore_errors=True)

    def report(self, *args, rc=0):
        r = run_loopwatch(["report"] + list(args), timeout=60)
        self.assertEqual(r.returncode, rc, r.stderr)
        return r

    def report_json(self, *args):
        return json.loads(self.report("--format", "json", *args).stdout)

    def recs(self, type_, pid=None):
        return [r for r in self.records if r["type"] == type_ and (pid is None or r["pid"] == pid)
                and not r.get("in_progress")]

    def final_summary(self, pid):
        s = [r for r in self.recs("summary", pid) if r["final"]]
        self.assertEqual(len(s), 1)
        return s[0]

    def test_text(self):
        out = self.report(self.file).stdout
        self.assertIn("pid %d (python3" % self.default_pid, out)
        self.assertIn("pid %d (python3" % self.precise_pid, out)
        self.assertIn("read_fifo (asyncio_blocking.py:", out)
        self.assertIn("blocking call sites by total time", out)
        self.assertIn(self.truth["fifo"]["path"][:30], out)
        self.assertIn("histogram of", out)
        self.assertIn("slowest callbacks", out)
        self.assertIn("<Task name='fifo-reader' coro=<read_fifo()", out)

    def test_json_prefers_final_summaries(self):
        j = self.report_json(self.file)
        pids = {p["pid"]: p for p in j["pids"]}
        self.assertEqual(set(pids), {self.default_pid, self.precise_pid})
        self.assertEqual(j["skipped"], 0)
        # default mode: the final summary's slow sites, not doubled by the periodic ones
        d = pids[self.default_pid]
        fin = self.final_summary(self.default_pid)
        self.assertGreaterEqual(len([s for s in self.recs("summary", self.default_pid)
                                     if not s["final"]]), 1)
        self.assertEqual(d["sites_scope"], "slow")
        self.assertEqual(d["summaries_used"], 1)
        self.assertEqual(d["record_sets"], 0)
        want = {(s["qualname"], s["line"]): s["count"] for s in fin["sites"]}
        self.assertEqual({(s["qualname"], s["line"]): s["count"] for s in d["sites"]}, want)
        fifo = [s for s in d["sites"] if s["qualname"] == "read_fifo"]
        self.assertEqual(len(fifo), 1)
        self.assertEqual(fifo[0]["count"], 1)
        self.assertAlmostEqual(fifo[0]["max_ms"], self.truth["fifo"]["ms"], delta=20)
        self.assertTrue(fifo[0]["hist"])
        rd = [b for b in d["blocking_sites"] if b["syscall"] == "read"]
        self.assertEqual(len(rd), 1)
        self.assertEqual(rd[0]["target"], self.truth["fifo"]["path"])
        self.assertEqual((rd[0]["qualname"], rd[0]["line"]), ("fifo_reader", M["fifo"]))
        # precise mode: every callback counted, as its final summary says
        p = pids[self.precise_pid]
        fin = self.final_summary(self.precise_pid)
        self.assertEqual(p["sites_scope"], "all")
        self.assertEqual(p["precise_runs"], 1)
        counts = {(s["qualname"], s["line"]): s["count"] for s in p["sites"]}
        self.assertEqual(counts, {(s["qualname"], s["line"]): s["count"] for s in fin["sites"]})
        fast = [c for (q, _), c in counts.items() if q == "fast_cb"]
        self.assertTrue(fast and fast[0] >= 4999, counts)
        # the slowest list: the final records, slowest first
        slow = [r["duration_ms"] for r in p["slowest"]]
        self.assertEqual(slow, sorted(slow, reverse=True))
        self.assertAlmostEqual(slow[0], max(r["duration_ms"] for r in
                                            self.recs("slow_callback", self.precise_pid)),
                               delta=0.002)

    def test_filters(self):
        j = self.report_json("--pid", str(self.default_pid), self.file)
        self.assertEqual([p["pid"] for p in j["pids"]], [self.default_pid])
        j = self.report_json("--site", "fifo_reader", self.file)
        self.assertEqual([p["pid"] for p in j["pids"]], [self.default_pid])
        self.assertEqual(j["slow_callback_records"] + j["blocking_call_records"], 2)
        j = self.report_json("--site", "asyncio_scenarios.py:*", self.file)
        self.assertEqual([p["pid"] for p in j["pids"]], [self.precise_pid])
        # a time between the two runs (RFC 3339 with an offset): one run on each side
        last = max(parse_ts(r["ts"]) for r in self.records if r["pid"] == self.default_pid)
        first = min(parse_ts(r["ts"]) for r in self.records if r["pid"] == self.precise_pid)
        self.assertLess(last, first)
        mid = (last + (first - last) / 2).astimezone(timezone(timedelta(hours=2)))
        mid = mid.isoformat(timespec="microseconds")
        j = self.report_json("--since", mid, self.file)
        self.assertEqual([p["pid"] for p in j["pids"]], [self.precise_pid])
        j = self.report_json("--until", mid, self.file)
        self.assertEqual([p["pid"] for p in j["pids"]], [self.default_pid])
        # relative: nothing in the last second of the future, everything in the last hour
        j = self.report_json("--since", "now", self.file)
        self.assertEqual(j["pids"], [])
        j = self.report_json("--since", "1h ago", self.file)
        self.assertEqual(len(j["pids"]), 2)
        out = self.report("--since", "now", self.file).stdout
        self.assertIn("no records in range", out)

    def test_trace(self):
        out = self.report("--format", "trace", self.file).stdout
        trace = json.loads(out)
        evs = trace["traceEvents"]
        meta = [e for e in evs if e["ph"] == "M"]
        names = {(e["name"], e["pid"]) for e in meta}
        for pid in (self.default_pid, self.precise_pid):
            self.assertIn(("process_name", pid), names)
            self.assertIn(("thread_name", pid), names)
        slices = [e for e in evs if e["ph"] == "X"]
        cbs = [e for e in slices if e["cat"] == "slow_callback"]
        slow = self.recs("slow_callback")
        self.assertEqual(len(cbs), len(slow))
        # one complete event per slow callback: its name, duration, and start = end - duration
        for r in slow:
            cb = r["callback"] or {}
            name = cb.get("qualname") or "<unidentified callback>"
            if cb.get("qualname") and cb.get("task_name"):
                name += " [%s]" % cb["task_name"]
            end = epoch_us(r["ts"])
            m = [e for e in cbs if e["name"] == name and e["pid"] == r["pid"] and
                 abs(e["ts"] + e["dur"] - end) < 2]
            self.assertEqual(len(m), 1, (name, r["ts"], [(e["name"], e["ts"]) for e in cbs]))
            self.assertAlmostEqual(m[0]["dur"], r["duration_ms"] * 1000, delta=2)
        # blocking calls inside their callback's span, on its thread, barely clipped
        blk = [e for e in slices if e["cat"] == "blocking_call"]
        self.assertEqual(len(blk), len(self.recs("blocking_call")))
        fifo = [e for e in blk if e["name"] == "read " + self.truth["fifo"]["path"]]
        self.assertEqual(len(fifo), 1, [e["name"] for e in blk])
        b = fifo[0]
        self.assertEqual(b["args"]["at"], "%s:%d" % (BLOCKING, M["fifo"]))
        self.assertIn("fifo_reader (%s:%d)" % (BLOCKING, M["fifo"]), b["args"]["stack"][0])
        rec = [r for r in self.recs("blocking_call") if r["syscall"] == "read"][0]
        self.assertAlmostEqual(b["dur"], rec["duration_ms"] * 1000, delta=1000)
        parents = [e for e in cbs if e["tid"] == b["tid"] and e["pid"] == b["pid"] and
                   e["ts"] <= b["ts"] and b["ts"] + b["dur"] <= e["ts"] + e["dur"]]
        self.assertEqual([e["name"] for e in parents], ["read_fifo [fifo-reader]"])
        for c in blk:
            for p in cbs:
                if p["tid"] != c["tid"] or p["pid"] != c["pid"]:
                    continue
                # nested or disjoint, never overlapping
                inside = p["ts"] <= c["ts"] and c["ts"] + c["dur"] <= p["ts"] + p["dur"]
                apart = c["ts"] >= p["ts"] + p["dur"] or c["ts"] + c["dur"] <= p["ts"]
                self.assertTrue(inside or apart, (c, p))

    def test_folded(self):
        line_re = re.compile(r"^(\S.*) (\d+)$")
        for weight in ("wall", "blocked", "cpu"):
            out = self.report("--format", "folded", "--weight", weight, self.file).stdout
            self.assertTrue(out.endswith("\n"))
            total = 0
            for line in out.splitlines():
                m = line_re.match(line)
                self.assertTrue(m, line)
                frames = m.group(1).split(";")
                self.assertTrue(all(frames), line)
                total += int(m.group(2))
            if weight == "wall":
                # outermost first: the module at the root, the FIFO read as a leaf
                leaf = [line for line in out.splitlines() if "[read %s]" % self.truth["fifo"]["path"]
                        in line]
                self.assertEqual(len(leaf), 1, out)
                frames = line_re.match(leaf[0]).group(1).split(";")
                self.assertTrue(frames[0].startswith("<module> (asyncio_blocking.py:"), frames)
                self.assertEqual(frames[-2], "fifo_reader (asyncio_blocking.py:%d)" % M["fifo"])
                self.assertEqual(frames[-3], "read_fifo (asyncio_blocking.py:%d)"
                                 % (def_line(BLOCKING, "read_fifo") + 1))
                want = sum(r["duration_ms"] for r in self.recs("slow_callback")) * 1000
                self.assertGreater(total, 0.95 * want)
            if weight == "cpu":
                want = sum(r["cpu_ms"] for r in self.recs("slow_callback")) * 1000
                # microseconds, rounded per record
                self.assertAlmostEqual(total, want, delta=len(self.recs("slow_callback")) + 2)

    def test_html_in_chromium(self):
        page = os.path.join(self.tmp, "report.html")
        r = self.report("--format", "html", "-o", page, self.file)
        self.assertEqual(r.stdout, "")
        with open(page) as f:
            text = f.read()
        p = PageParser()
        p.feed(text)
        for i in ("summary", "sites", "blocking", "flamegraph", "timeline", "slowest"):
            self.assertIn(i, p.ids)
        for c in (("table", "sites"), ("table", "blocking-sites"), ("svg", "flamegraph"),
                  ("svg", "timeline"), ("svg", "hist"), ("rect", "cb"), ("rect", "blk"),
                  ("g", "frame")):
            self.assertIn(c, p.classes)
        self.assertEqual(p.external, [])
        self.assertIn("read_fifo", text)
        png = self.screenshot(page)
        w, h, bpp, rows = read_png(png)
        self.assertEqual((w, h), (1280, 2000))
        colors, ink = set(), 0
        for y in range(0, h, 4):
            row = rows[y]
            for x in range(0, w * bpp, 4 * bpp):
                px = row[x:x + 3]
                colors.add(px)
                if px != b"\xf4\xf5\xf7" and px != b"\xff\xff\xff":
                    ink += 1
        self.assertGreater(len(colors), 50, "a blank page?")
        self.assertGreater(ink, 0.1 * (h // 4) * (w // 4))
        # the flame graph's and timeline's colours are on screen
        self.assertTrue(any(abs(px[0] - 0xe8) < 8 and abs(px[1] - 0x59) < 8 for px in colors))

    def screenshot(self, page):
        exe = shutil.which("chromium")
        if not exe:
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                            "chromium"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                           capture_output=True, timeout=600)
            exe = shutil.which("chromium")
        if not exe:
            self.fail("chromium is not installed and apt-get could not install it")
        png = os.path.join(self.tmp, "out.png")
        profile = tempfile.mkdtemp(prefix="lwtest-chromium-")
        try:
            r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-dev-shm-usage", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--user-data-dir=" + profile,
                                "--screenshot=" + png, "--window-size=1280,2000",
                                "file://" + page], capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        self.assertTrue(os.path.exists(png), r.stderr[-2000:])
        return png

    def test_rotated_and_truncated(self):
        d = tempfile.mkdtemp(prefix="lwtest-rot-", dir=self.tmp)
        with open(self.file) as f:
            lines = f.readlines()
        half = len(lines) // 2
        # as the JSONL sink rotates: NAME.jsonl.2 oldest, NAME.jsonl newest, its last line cut
        with open(os.path.join(d, "app.jsonl.2"), "w") as f:
            f.writelines(lines[:half // 2])
        with open(os.path.join(d, "app.jsonl.1"), "w") as f:
            f.writelines(lines[half // 2:half])
        with open(os.path.join(d, "app.jsonl"), "w") as f:
            f.writelines(lines[half:])
            f.write(lines[0][:40])
        whole = self.report_json(self.file)
        r = self.report("--format", "json", os.path.join(d, "app.jsonl"))
        self.assertIn("skipped 1 line", r.stderr)
        self.assertIn("cut short", r.stderr)
        rot = json.loads(r.stdout)
        self.assertEqual([f["path"] for f in rot["files"]],
                         [os.path.join(d, n) for n in ("app.jsonl.2", "app.jsonl.1", "app.jsonl")])
        self.assertEqual(rot["skipped"], 1)
        self.assertTrue(rot["files"][2]["truncated_last"])
        for k in ("sites", "blocking_sites", "slow_callbacks", "runs"):
            self.assertEqual([p[k] for p in rot["pids"]], [p[k] for p in whole["pids"]], k)
        # the base name without .jsonl finds them too
        rot2 = self.report_json(os.path.join(d, "app"))
        self.assertEqual(len(rot2["files"]), 3)

    def test_bad_usage_and_files(self):
        cases = [
            (["report", "--since", "yesterday", self.file], 2, "invalid --since"),
            (["report", "--until", "10", self.file], 2, "invalid --until"),
            (["report", "--since", "now", "--until", "1h ago", self.file], 2, "after --until"),
            (["report", "--weight", "heavy", self.file], 2, "invalid --weight"),
            (["report", "--format", "pdf", self.file], 2, "invalid --format"),
            (["--pid", "1", "--format", "html"], 2, "invalid --format"),
            (["--pid", "1", "--since", "1h"], 2, "--since is an option of 'loopwatch report'"),
            (["report", "/nonexistent/x.jsonl"], 1, "cannot read /nonexistent/x.jsonl"),
            (["report", "-o", "/nonexistent/dir/out.html", "--format", "html", self.file], 1,
             "cannot write /nonexistent/dir/out.html"),
        ]
        for args, rc, msg in cases:
            with self.subTest(args=args):
                r = run_loopwatch(args)
                self.assertEqual(r.returncode, rc, r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertEqual(r.stdout, "")
        # a file of junk: read, nothing in it, said so
        junk = os.path.join(self.tmp, "junk.jsonl")
        with open(junk, "w") as f:
            f.write("hello\n{\"type\": 5}\n[1,2]\n")
        r = self.report(junk)
        self.assertIn("skipped 3 lines", r.stderr)
        self.assertIn("no records in range", r.stdout)


if __name__ == "__main__":
    unittest.main()
