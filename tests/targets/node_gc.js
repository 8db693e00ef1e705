// A Node.js target for loopwatch's tests (issue 21, V8 GC time): prints "ready <pid>", waits
// for the go-file, then runs ROUNDS (argv[3], default 2) pairs of slow timer callbacks, 150 ms
// apart (argv[4] "spin": spinPure alone, nothing allocates): allocHeavy builds short-lived objects for 200 ms (many scavenges; a ring of survivors
// keeps them from being free), spinPure does arithmetic for 200 ms and allocates nothing. For
// each callback it prints its own time and the GC time V8's perf_hooks ('gc' entries that start
// inside the callback) reported for it: the oracle.
'use strict';
const fs = require('fs');
const { PerformanceObserver } = require('perf_hooks');

const go = process.argv[2];
const rounds = parseInt(process.argv[3] || '2', 10);
const spinOnly = process.argv[4] === 'spin';
const gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: (e.detail || e).kind });
}).observe({ entryTypes: ['gc'] });

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }

const ring = new Array(200000);
function allocHeavy() {
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < 200) {
    for (let k = 0; k < 1000; k++, i++)
      ring[i % ring.length] = { id: i, name: 'obj' + i, tags: [i, i + 1] }; // MARK:alloc
  }
  return [t0, performance.now()];
}

// arithmetic for about 200 ms (an iteration count calibrated before "ready": no clock reads,
// no heap numbers left to box once optimized)
function spin(n) { let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); return x; }
for (let w = 0; w < 3; w++) spin(1e6);
const t0c = performance.now();
spin(4e6);
const SPIN_N = Math.round(4e6 * 200 / Math.max(1, performance.now() - t0c));

function spinPure() {
  const t0 = performance.now();
  spin(SPIN_N); // MARK:spin
  return [t0, performance.now()];
}

const done = [];
const queue = [];
for (let r = 0; r < rounds; r++) queue.push(...(spinOnly ? [spinPure] : [allocHeavy, spinPure]));

function next() {
  const f = queue.shift();
  if (!f) {
    // the observer's entries arrive after the callbacks: collect them, then report
    setTimeout(() => {
      for (const d of done) {
        const mine = gcs.filter((g) => g.start >= d.t0 && g.start < d.t1);
        out({ event: 'callback', name: d.name, ms: d.t1 - d.t0,
              gc_ms: mine.reduce((a, g) => a + g.ms, 0), gc_n: mine.length,
              kinds: mine.map((g) => g.kind + ':' + g.ms.toFixed(1)).join(' ') });
      }
      out({ event: 'done' });
      process.exit(0);
    }, 200);
    return;
  }
  const [t0, t1] = f();
  done.push({ name: f.name, t0, t1 });
  setTimeout(next, 150);
}

out({ ready: process.pid });
process.stdout.write('ready ' + process.pid + '\n');
const poll = setInterval(() => {
  if (fs.existsSync(go)) { clearInterval(poll); setTimeout(next, 50); }
}, 10);
