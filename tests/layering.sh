#!/bin/sh
# Lower rooms of daemon/ never include higher ones (daemon/README.md); no include cycle between
# cli/ files. Exit 1 naming each offending line.
cd "$(dirname "$0")/.." || exit 2
rank() { case "$1" in base) echo 1;; target) echo 2;; record) echo 3;; probe) echo 4;; report) echo 5;; service) echo 6;; *) echo 0;; esac; }
bad=0
for f in daemon/*/*.[ch]; do
	room=$(basename "$(dirname "$f")"); r=$(rank "$room")
	for inc in $(sed -n 's|^#include "\([a-z]*\)/[^"]*".*|\1|p' "$f"); do
		[ "$inc" = "$room" ] && continue
		ir=$(rank "$inc")
		if [ "$ir" -eq 0 ] || [ "$ir" -gt "$r" ]; then
			echo "layering: $f ($room) includes $inc/"; bad=1
		fi
	done
	if grep -q '^#include "[a-z_]*\.h"' "$f" && grep '^#include "[a-z_]*\.h"' "$f" | grep -vq 'loopwatch\.h\|loopwatch\.skel\.h\|lw_fdsys\.h'; then
		echo "layering: $f includes a header without its room:"; grep -n '^#include "[a-z_]*\.h"' "$f" | grep -v 'loopwatch\|lw_fdsys'; bad=1
	fi
done
for f in daemon/*.c daemon/*.h; do [ -e "$f" ] && { echo "layering: $f is outside a room"; bad=1; }; done
[ "$bad" = 0 ] && echo "layering: ok ($(ls daemon/*/*.[ch] | wc -l) files in $(ls -d daemon/*/ | wc -l) rooms)"
exit $bad
