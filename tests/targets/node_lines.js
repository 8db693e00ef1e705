// A Node.js target for the line of the work (tests/integration/test_node.py): prints
// "ready <pid>", waits for the go-file, then ROUNDS times (argv[3]) runs a timer callback that
// spins ~200 ms in a loop (its marked line), printing one JSON line per callback. It warms the
// spin up first, then after each spin compiles a thousand small functions: V8 writes its
// jitdump (--perf-prof) through a 2 MB buffer, and this fills it, so that the busy function's
// compiled code, line table included, is in the file (as in a server that has run a while).
//
//     node --perf-basic-prof --interpreted-frames-native-stack --perf-prof node_lines.js GO [N]
'use strict';
const fs = require('fs');

const go = process.argv[2];
const rounds = parseInt(process.argv[3] || '3', 10);

function out(o) { fs.writeSync(1, JSON.stringify(o) + '\n'); }

// pure JS arithmetic, no call into C++ in the loop (a sample in a C++ leaf such as
// performance.now() can hide its JS caller): n rounds, calibrated below to about 200 ms
function spinFor(n) {
  let x = 0;
  for (let i = 0; i < n; i++) { // MARK:loop
    x += Math.sqrt(x + i); // MARK:busy
  }
  return x;
}

function compileMany(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += new Function('a', `return a * ${i} + ${i % 7};`)(i);
  return s;
}

let round = 0;
function tick() {
  round++;
  const t0 = performance.now();
  spinFor(SPIN_N);
  out({ event: 'callback', round, ms: performance.now() - t0 });
  // in small steps, each well under the slow-callback threshold
  let left = 4;
  const step = () => {
    compileMany(250);
    if (--left > 0)
      setImmediate(step);
    else if (round < rounds)
      setTimeout(tick, 200);
    else
      setTimeout(() => { out({ event: 'done' }); process.exit(0); }, 300);
  };
  setImmediate(step);
}

spinFor(2e6);	// warm: compiled before it is timed
const t0c = performance.now();
spinFor(4e6);
const SPIN_N = Math.round(4e6 * 200 / Math.max(1, performance.now() - t0c));
compileMany(1000);
fs.writeSync(1, 'ready ' + process.pid + '\n');
const poll = setInterval(() => {
  if (fs.existsSync(go)) { clearInterval(poll); setTimeout(tick, 50); }
}, 10);
