#!/bin/sh
# Prepare the Debian sid chroot the integration tests run current CPythons in
# (python3.13, python3.14, python3.15, python3.14-dbg, uvloop, aiohttp).
#
#   sh tests/chroot/sid.sh [DIR]      (root; DIR defaults to $LW_SID_ROOT or /var/tmp/loopwatch-sid)
#
# Ready chroot in DIR: reused as is (DIR/.lw-sid-ready names the package set).
# Otherwise unpacked from the cache tarball /var/cache/loopwatch-test/sid-KEY.tar.gz
# (survives between CI runs on one machine); otherwise built with debootstrap from
# the Debian archive apt already uses (about 2 minutes) and cached.
# LW_SID_MIRROR overrides the archive, LW_SID_CACHE the cache directory.
# Exit 0: ready (prints DIR). Exit 77: the archive cannot be reached (reason printed;
# the tests skip). Other: a real failure.
set -eu

DIR=${1:-${LW_SID_ROOT:-/var/tmp/loopwatch-sid}}
CACHE=${LW_SID_CACHE:-/var/cache/loopwatch-test}
PKGS="python3.13,python3.14,python3.15,python3.14-dbg,python3-uvloop,python3-aiohttp"
KEY=$(printf '%s\n' "sid $PKGS minbase v1" | sha256sum | cut -c1-12)
TARBALL="$CACHE/sid-$KEY.tar.gz"

say() { echo "sid.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then say "needs root (debootstrap, chroot)"; exit 1; fi
if [ -f "$DIR/.lw-sid-ready" ] && [ "$(cat "$DIR/.lw-sid-ready")" = "$KEY" ]; then
	echo "$DIR"; exit 0
fi

mkdir -p "$CACHE" "$(dirname "$DIR")"
# one builder at a time (parallel test runs on one machine)
exec 9>"$CACHE/.sid.lock"
flock 9
if [ -f "$DIR/.lw-sid-ready" ] && [ "$(cat "$DIR/.lw-sid-ready")" = "$KEY" ]; then
	echo "$DIR"; exit 0
fi

TMP="$DIR.tmp.$$"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

if [ -f "$TARBALL" ]; then
	say "unpacking cached $TARBALL into $DIR"
	mkdir -p "$TMP"
	tar -C "$TMP" -xzf "$TARBALL"
else
	# the Debian archive apt uses (deb822 URIs: or one-line deb entries), else deb.debian.org
	MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n -e 's|^URIs:[[:space:]]*\([^[:space:]]*/debian\)/*[[:space:]]*$|\1|p' \
		       -e 's|^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*/debian\)/*[[:space:]].*|\2|p' | head -n 1)
	MIRROR=${LW_SID_MIRROR:-${MIRROR:-http://deb.debian.org/debian}}
	if ! command -v debootstrap >/dev/null; then
		say "debootstrap is not installed (apt-get install debootstrap; make deps does)"; exit 1
	fi
	if ! python3 - "$MIRROR/dists/sid/Release" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=20).read(64)
except Exception as e:
    print(f"sid.sh: {sys.argv[1]}: {e}", file=sys.stderr); sys.exit(1)
PY
	then
		say "SKIP: the Debian archive $MIRROR cannot be reached: no sid chroot"; exit 77
	fi
	say "building sid chroot from $MIRROR into $DIR (about 2 minutes)"
	mkdir -p "$TMP"
	if ! debootstrap --variant=minbase --include="$PKGS" sid "$TMP" "$MIRROR" >"$TMP.log" 2>&1; then
		tail -n 20 "$TMP.log" >&2
		if grep -q -e 'Failed getting release file' -e 'Temporary failure resolving' -e 'Could not connect' "$TMP.log"; then
			say "SKIP: the Debian archive $MIRROR cannot be reached: no sid chroot"; rm -f "$TMP.log"; exit 77
		fi
		say "debootstrap failed (log above, full log $TMP.log)"; exit 1
	fi
	rm -f "$TMP.log"
	echo 'Acquire::Check-Valid-Until "false";' > "$TMP/etc/apt/apt.conf.d/99loopwatch-test"
	rm -rf "$TMP/var/cache/apt/archives/"*.deb "$TMP/var/lib/apt/lists/"* 2>/dev/null || true
	tar -C "$TMP" -czf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
	say "cached as $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi
echo "$KEY" > "$TMP/.lw-sid-ready"
rm -rf "$DIR"
mv "$TMP" "$DIR"
trap - EXIT
echo "$DIR"
