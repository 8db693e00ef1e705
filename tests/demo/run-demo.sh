#!/bin/sh
# make demo: start the demo asyncio app, attach loopwatch to it (default mode) for a few
# seconds, then show the same app in precise mode. Needs root (BPF).
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ "$(id -u)" != 0 ]; then
	echo "make demo needs root (loopwatch loads BPF programs): try sudo make demo" >&2
	exit 1
fi
$PY tests/demo/demo_app.py > /tmp/loopwatch-demo.log 2>&1 &
APP=$!
trap 'kill $APP 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "== loopwatch --pid $APP --duration 6s        (default mode: nothing inside the app changes)"
echo
./build/loopwatch --pid "$APP" --duration 6s
echo
echo "== loopwatch --pid $APP --duration 3s --precise -q   (every callback timed; summary only)"
./build/loopwatch --pid "$APP" --duration 3s --precise -q
