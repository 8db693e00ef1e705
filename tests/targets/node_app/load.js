// loopwatch test helper: autocannon (from argv[2]/node_modules) loads URL argv[3] on 4
// connections until its stdin closes, then prints its totals as one JSON line.
'use strict';
const path = require('path');
const autocannon = require(path.join(process.argv[2], 'node_modules', 'autocannon'));

const inst = autocannon({ url: process.argv[3], connections: 4, duration: 120 }, (err, r) => {
  if (err) {
    process.stderr.write(String(err) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ total: r.requests.total, errors: r.errors,
    timeouts: r.timeouts, non2xx: r.non2xx }) + '\n');
});
process.stdin.resume();
process.stdin.on('end', () => inst.stop());
