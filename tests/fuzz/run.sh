#!/bin/sh
# run.sh BIN SECONDS: fuzz BIN for SECONDS on its corpus (seeds + what earlier runs found);
# SECONDS=0 replays the seeds once. Prints libFuzzer's last status line (execs, coverage).
set -e
bin=$1; secs=$2
name=$(basename "$bin")
here=$(dirname "$0")
seeds=$here/seeds/$name
corpus=$here/corpus-$name
mkdir -p "$corpus"
log=$(mktemp)
if [ "$secs" = 0 ]; then
	"$bin" -runs=0 -artifact_prefix="$here/crash-$name-" "$seeds" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
	echo "$name: $(ls "$seeds" | wc -l) seeds replayed, no finding"
else
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="$here/crash-$name-" -print_final_stats=1 \
		"$corpus" "$seeds" >"$log" 2>&1 || { tail -60 "$log"; rm -f "$log"; exit 1; }
	echo "$name: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') execs in ${secs}s," \
		"$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+')," \
		"no finding"
fi
rm -f "$log"
