// A Node.js target for loopwatch's tests: prints "ready <pid>", waits for the go-file, then
// blocks its event loop twice: a timer callback that spins 200 ms, and a readFileSync on a FIFO
// whose writer shows up 300 ms later. Prints its own measurements as JSON lines.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const go = process.argv[2];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lw-node-'));
const fifo = path.join(dir, 'config.fifo');
execFileSync('mkfifo', [fifo]);

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }

function spinTimer() {
  const t0 = performance.now();
  while (performance.now() - t0 < 200) { /* MARK:spin */ }
  out({ event: 'spin', ms: performance.now() - t0 });
  setTimeout(readConfig, 50);
}

function readConfig() {
  spawn('sh', ['-c', `sleep 0.3; echo debug > ${fifo}`], { stdio: 'ignore' });
  const t0 = performance.now();
  const text = fs.readFileSync(fifo, 'utf8'); // MARK:fifo
  out({ event: 'fifo', ms: performance.now() - t0, path: fifo, n: text.length });
  setTimeout(() => { out({ event: 'done' }); process.exit(0); }, 100);
}

out({ ready: process.pid });
process.stdout.write('ready ' + process.pid + '\n');
const poll = setInterval(() => {
  if (fs.existsSync(go)) { clearInterval(poll); setTimeout(spinTimer, 50); }
}, 10);
