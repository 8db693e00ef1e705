#!/bin/sh
# The Debian package on a clean Debian 12 system (issue 22): `make deb` (lintian-clean), then in
# a fresh debootstrap'ed bookworm chroot (minbase + python3):
#   apt install ./loopwatch_V_amd64.deb   dependencies resolved by apt from the shlibs Depends
#   loopwatch --version; loopwatchd --check-config on the installed conffile; the unit enabled
#   but not started (no systemd running there); the report directory's owner and mode
#   the installed /usr/sbin/loopwatch, run inside the chroot, traces a python3 asyncio program
#   running inside the chroot (BPF through the bind-mounted /sys: BTF, bpffs)
#   upgrade to a rebuilt package with a bumped changelog version: the edited conffile is kept
#   apt purge --autoremove: the chroot's file list equals the one from before the install,
#   less what Debian allows to stay (dpkg's and apt's own logs, caches and state)
# The chroot is built once per machine and cached as a tarball (LW_DEB_CACHE, default
# /var/cache/loopwatch-test/bookworm-minbase.tar, with the dependencies' .debs in its apt
# cache), from the mirror apt uses (LW_DEB_MIRROR overrides); each run unpacks a fresh copy. Skips (exit 0, says why) only when there is no cached
# chroot and the Debian archive cannot be reached. Needs root (chroot, mounts, BPF).
set -eu
cd "$(dirname "$0")/../.."
T0=$(date +%s)
say() { echo "test-deb: [$(($(date +%s) - T0))s] $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mounts, BPF): run it as root"

CACHE_DIR=${LW_DEB_CACHE:-/var/cache/loopwatch-test}
TARBALL=$CACHE_DIR/bookworm-minbase.tar
VERSION=$(cat VERSION)
WORK=$(mktemp -d /tmp/lw-test-deb.XXXXXX)
ROOT=$WORK/root

# ---- mounts: /proc, /sys (recursively: BTF, bpffs, tracefs), /dev; undone before any rm
mounted_under() { awk -v p="$1/" 'index($5 "/", p) == 1 { print $5 }' /proc/self/mountinfo; }
mount_chroot() {
	mount -t proc proc "$1/proc"
	mount --rbind /sys "$1/sys" && mount --make-rslave "$1/sys"
	mount --bind /dev "$1/dev"
}
umount_chroot() {
	for m in $(mounted_under "$1" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
cleanup() {
	rc=$?
	[ -n "${APP:-}" ] && kill "$APP" 2>/dev/null || true
	for d in "$ROOT" "$WORK/mk"; do [ -d "$d" ] && umount_chroot "$d"; done
	if [ -n "$(mounted_under "$WORK")" ]; then
		echo "test-deb: still mounted under $WORK, not removing it:" >&2; mounted_under "$WORK" >&2
	else
		rm -rf --one-file-system "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the mirror apt already uses for bookworm (sources.list or deb822 .sources; LW_DEB_MIRROR)
MIRROR=${LW_DEB_MIRROR:-}
[ -n "$MIRROR" ] || MIRROR=$(python3 - <<'EOF'
import glob, re
found = []
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
    try:
        text = open(f).read()
    except OSError:
        continue
    if f.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and "bookworm" in fields.get("Suites", "").split() \
                    and "main" in fields.get("Components", "").split():
                found += fields.get("URIs", "").split()
    else:
        for line in text.splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s+.*\bmain\b", line)
            if m:
                found.append(m.group(1))
print(found[0] if found else "http://deb.debian.org/debian")
EOF
)

# ---- the packages: `make deb` (incremental, lintian), and the same tree with a bumped version
say "make deb"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s deb >"$WORK/make-deb.log" 2>&1 || { tail -30 "$WORK/make-deb.log" >&2; fail "make deb failed (log above)"; }
DEB=$(ls build/deb/loopwatch_"$VERSION"*_amd64.deb)
V1=$(dpkg-deb -f "$DEB" Version)
V2="$V1+pkgtest1"
say "built $DEB"

# ---- the cached chroot (built at most once: flock, and only when the tarball is missing)
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9
if [ ! -s "$TARBALL" ]; then
	if ! python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read(1)" \
			"$MIRROR/dists/bookworm/Release" 2>/dev/null; then
		say "SKIP: no cached chroot ($TARBALL) and the Debian archive $MIRROR cannot be reached"
		exit 0
	fi
	say "building the cached chroot from $MIRROR (once per machine): debootstrap --variant=minbase --include=python3 bookworm"
	T1=$(date +%s)
	debootstrap --variant=minbase --include=python3 bookworm "$WORK/mk" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
	# apt's lists and the package's dependencies in its cache: later runs install offline
	mount_chroot "$WORK/mk"
	cp "$DEB" "$WORK/mk/tmp/"
	chroot "$WORK/mk" sh -c "apt-get -qq update && DEBIAN_FRONTEND=noninteractive \
		apt-get -qq -y --download-only install /tmp/$(basename "$DEB")" >"$WORK/apt-mk.log" 2>&1 ||
		{ tail -20 "$WORK/apt-mk.log" >&2; fail "apt-get in the new chroot failed (log above)"; }
	rm -f "$WORK/mk/tmp/$(basename "$DEB")"
	umount_chroot "$WORK/mk"
	tar -C "$WORK/mk" --numeric-owner -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
	rm -rf --one-file-system "$WORK/mk"
	say "cached $TARBALL ($(du -m "$TARBALL" | cut -f1) MB, $(($(date +%s) - T1))s)"
fi
flock -u 9; exec 9>&-

say "rebuilding it as $V2 (upgrade test)"
# in build/deb/src itself, where its objects are (a copy elsewhere would change
# -ffile-prefix-map and rebuild everything); its changelog is restored afterwards
SRC=build/deb/src
cp "$SRC/debian/changelog" "$WORK/changelog.orig"
MAINT=$(dpkg-parsechangelog -l "$WORK/changelog.orig" -S Maintainer)
{ printf 'loopwatch (%s) bookworm; urgency=medium\n\n  * test-deb.sh: the same tree, a newer version (upgrade test).\n\n -- %s  %s\n\n' \
	"$V2" "$MAINT" "$(date -R)"
  cat "$WORK/changelog.orig"; } >"$SRC/debian/changelog"
(cd "$SRC" && dpkg-buildpackage -b -nc -us -uc) >"$WORK/build2.log" 2>&1 || BUILD2_RC=$?
cp "$WORK/changelog.orig" "$SRC/debian/changelog"
[ -z "${BUILD2_RC:-}" ] || { tail -30 "$WORK/build2.log" >&2; fail "building $V2 failed (log above)"; }
mv build/deb/loopwatch_"$V2"_* build/deb/loopwatch-dbgsym_"$V2"_* "$WORK/"
DEB2=$WORK/loopwatch_${V2}_amd64.deb
[ -f "$DEB2" ] || fail "no $DEB2 after dpkg-buildpackage"

mkdir "$ROOT"
tar -C "$ROOT" --numeric-owner -xf "$TARBALL"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
# the file list of a clean system: path, type, mode, owner (pseudo file systems and /tmp aside)
file_list() {
	(cd "$ROOT" && find . -xdev \( -path ./tmp -o -path ./proc -o -path ./sys -o -path ./dev \) -prune \
		-o -printf '%p %y %m %u:%g\n' | sort)
}
file_list >"$WORK/before.list"
mount_chroot "$ROOT"
cp "$DEB" "$DEB2" "$ROOT/tmp/"
chmod 0644 "$ROOT/tmp/"*.deb

# ---- install
say "apt install ./$(basename "$DEB") in a fresh bookworm chroot"
in_root apt-get -qq -y install "/tmp/$(basename "$DEB")" >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log" >&2; fail "apt install of $(basename "$DEB") failed (log above)"; }
[ "$(in_root dpkg-query -W -f '${Status} ${Version}' loopwatch)" = "install ok installed $V1" ] ||
	fail "dpkg does not show loopwatch $V1 installed"
out=$(in_root /usr/sbin/loopwatch --version) || fail "loopwatch --version: exit $?"
case "$out" in *"$VERSION"*) ;; *) fail "loopwatch --version printed '$out', not the version $VERSION";; esac
in_root /usr/sbin/loopwatchd --config /etc/loopwatch/loopwatch.conf --check-config >"$WORK/check.log" 2>&1 ||
	{ cat "$WORK/check.log" >&2; fail "loopwatchd --check-config on the installed config failed"; }
in_root dpkg-query -W -f '${Conffiles}\n' loopwatch | grep -q '^ /etc/loopwatch/loopwatch.conf ' ||
	fail "/etc/loopwatch/loopwatch.conf is not a conffile of the package"
# the report directory the shipped config names: root only (0750)
REPORT_DIR=$(sed -n 's/^dir *= *\([^ ;]*\).*/\1/p' "$ROOT/etc/loopwatch/loopwatch.conf")
[ -n "$REPORT_DIR" ] || fail "no [report] dir = in the installed loopwatch.conf"
[ "$(stat -c '%U:%G %a' "$ROOT$REPORT_DIR")" = "root:root 750" ] ||
	fail "$REPORT_DIR is $(stat -c '%U:%G %a' "$ROOT$REPORT_DIR" 2>&1), not root:root 750"
# enabled the Debian way (deb-systemd-helper), not started: no systemd runs in the chroot
[ "$(readlink "$ROOT/etc/systemd/system/multi-user.target.wants/loopwatchd.service")" = \
	/lib/systemd/system/loopwatchd.service ] || fail "loopwatchd.service is not enabled (no wants link)"
for p in $(pgrep -x loopwatchd || true); do
	[ "$(readlink "/proc/$p/root")" != "$ROOT" ] || fail "loopwatchd was started in a chroot without systemd (pid $p)"
done
for f in usr/share/man/man8/loopwatch.8.gz usr/share/man/man8/loopwatchd.8.gz usr/share/man/man5/loopwatch.conf.5.gz; do
	[ -f "$ROOT/$f" ] || fail "man page /$f not installed"
done

# ---- the installed binary traces a python3 asyncio program running in the chroot
cat >"$ROOT/tmp/app.py" <<'EOF'
import asyncio, time
def blocking_step():
    time.sleep(0.3)                     # blocks the loop: loopwatch must name this function
async def main():
    open("/tmp/app.ready", "w").close()
    while True:
        blocking_step()
        await asyncio.sleep(0.2)
asyncio.run(main())
EOF
# a plain command (not the in_root function, which would run in a subshell): $! is python's pid
chroot "$ROOT" /usr/bin/python3 /tmp/app.py &
APP=$!
i=0; while [ ! -e "$ROOT/tmp/app.ready" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "the chroot's python3 app did not start"; sleep 0.1; done
say "tracing the chroot's python3 (pid $APP, $(readlink "/proc/$APP/exe")) with the chroot's /usr/sbin/loopwatch"
in_root /usr/sbin/loopwatch --pid "$APP" --duration 2s >"$WORK/trace.log" 2>&1 ||
	{ rc=$?; cat "$WORK/trace.log" >&2; fail "loopwatch --pid $APP in the chroot: exit $rc (output above)"; }
kill "$APP" 2>/dev/null || true; wait "$APP" 2>/dev/null || true; APP=
grep -q 'blocking_step (app.py:3)' "$WORK/trace.log" ||
	{ cat "$WORK/trace.log" >&2; fail "the trace does not name blocking_step (app.py:3) (output above)"; }
grep -q 'clock_nanosleep' "$WORK/trace.log" ||
	{ cat "$WORK/trace.log" >&2; fail "the trace does not show the blocking sleep (output above)"; }
say "trace ok: $(grep -c '^WARNING' "$WORK/trace.log") records, blocking_step (app.py:3) named"

# ---- upgrade: an edited conffile is kept
sed -i 's/^threshold = 100ms /threshold = 123ms /' "$ROOT/etc/loopwatch/loopwatch.conf"
grep -q '^threshold = 123ms ' "$ROOT/etc/loopwatch/loopwatch.conf" || fail "could not edit the conffile (threshold line?)"
echo "# a report loopwatchd wrote" >"$ROOT$REPORT_DIR/api.jsonl"
say "upgrade to $V2 with an edited conffile"
in_root apt-get -qq -y install "/tmp/$(basename "$DEB2")" >"$WORK/upgrade.log" 2>&1 ||
	{ cat "$WORK/upgrade.log" >&2; fail "apt install of $(basename "$DEB2") (upgrade) failed (log above)"; }
[ "$(in_root dpkg-query -W -f '${Status} ${Version}' loopwatch)" = "install ok installed $V2" ] ||
	fail "dpkg does not show loopwatch $V2 installed after the upgrade"
grep -q '^threshold = 123ms ' "$ROOT/etc/loopwatch/loopwatch.conf" || fail "the upgrade lost the conffile edit"
[ ! -e "$ROOT/etc/loopwatch/loopwatch.conf.dpkg-new" ] || fail "the upgrade left loopwatch.conf.dpkg-new"
in_root /usr/sbin/loopwatchd --check-config >/dev/null 2>&1 || fail "loopwatchd --check-config after the upgrade"
[ -f "$ROOT$REPORT_DIR/api.jsonl" ] || fail "the upgrade removed the reports in $REPORT_DIR"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/loopwatchd.service" ] || fail "the upgrade disabled the unit"

# ---- purge: back to the clean system's file list
say "apt purge --autoremove loopwatch"
in_root apt-get -qq -y purge --autoremove loopwatch >"$WORK/purge.log" 2>&1 ||
	{ cat "$WORK/purge.log" >&2; fail "apt purge failed (log above)"; }
in_root dpkg-query -W -f '${Status}' loopwatch 2>/dev/null | grep -qv 'not-installed' &&
	fail "dpkg still knows loopwatch after the purge: $(in_root dpkg-query -W -f '${Status}' loopwatch)"
umount_chroot "$ROOT"
rm -f "$ROOT/tmp/"*.deb
file_list >"$WORK/after.list"
ls "$ROOT"/var/lib/dpkg/info/loopwatch.* >/dev/null 2>&1 && fail "dpkg's info files of loopwatch left after the purge"
# allowed to differ: apt's and dpkg's own records of what happened (logs, the auto-installed
# marks, dpkg's backups, caches); anything else left (a file, a directory, a changed owner or
# mode) is the package's
ALLOWED='\./(var/log/(dpkg\.log|apt/[^ ]*)|var/lib/apt/extended_states|var/lib/dpkg/[a-z]*-old|var/cache/(apt|debconf)/[^ ]*) '
diff "$WORK/before.list" "$WORK/after.list" | grep '^[<>] ' | grep -Ev "^[<>] $ALLOWED" >"$WORK/left.list" || true
if [ -s "$WORK/left.list" ]; then
	head -40 "$WORK/left.list" >&2
	fail "the purge did not restore the clean file list (< before, > after: above)"
fi
say "purge: the file list is the clean one but for $(diff "$WORK/before.list" "$WORK/after.list" | grep -c '^[<>] ') dpkg/apt records"
say "ok: install, trace, upgrade (conffile kept), purge (nothing left) in $(($(date +%s) - T0))s"
