#!/bin/sh
# Regenerate the committed seed corpora (tests/fuzz/seeds/NAME/) from real inputs on this
# machine: small ELF files, /proc files of live processes, line tables from the unit-test
# vectors, the shipped config, records loopwatch wrote. Run from the repository root after
# `make all`; review and commit what changes.
set -e
S=tests/fuzz/seeds
B=build/fuzz
rm -rf $S; mkdir -p $S
mkdir -p $B

# ELF: the look-alike CPython (symbols, version strings), stripped and not
mkdir -p $S/fuzz_elf
cc -g -O1 -o $B/seed_fake_py tests/targets/fake_python.c
cp $B/seed_fake_py $S/fuzz_elf/fake_py
strip -o $S/fuzz_elf/fake_py_stripped $B/seed_fake_py
objcopy --only-keep-debug $B/seed_fake_py $S/fuzz_elf/fake_py.debug
cc -O1 -shared -fPIC -o $S/fuzz_elf/tiny.so -x c - <<'C'
int context_run(void) { return 1; }
const char version[] = "3.11.2 (main, Mar 13 2023)";
C

# /proc/PID/maps of a python and of this shell; odd paths
mkdir -p $S/fuzz_maps
/usr/bin/python3.11 -c 'import asyncio,sys; sys.stdout.write(open("/proc/self/maps").read())' > $S/fuzz_maps/python
cat /proc/self/maps > $S/fuzz_maps/cat
printf '7f0000000000-7f0000001000 r-xp 00000000 08:01 42  /tmp/a b (deleted)\n7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \n' > $S/fuzz_maps/odd

# line tables: first byte minor-8, then the instruction offset (LE u32), then the table
mkdir -p $S/fuzz_pyline
python3 - <<'PY'
import struct
seen = set()
for line in open("tests/unit/fixtures/pyline_vectors.txt"):
    f = line.split()
    if len(f) < 5 or f[0].startswith("#"):
        continue
    minor, table, instr = int(f[0]), f[2], int(f[3])
    if not all(c in "0123456789abcdef" for c in table):
        table = ""
    if (minor, table) in seen:
        continue
    seen.add((minor, table))
    data = bytes([minor - 8]) + struct.pack("<I", instr) + bytes.fromhex(table)
    open("tests/fuzz/seeds/fuzz_pyline/v%d-%d" % (minor, len(seen)), "wb").write(data)
PY

# /proc/net: first byte = parser (0 udp, 1 tcp6... see fuzz_procnet.c), then inode, then text
mkdir -p $S/fuzz_procnet
python3 - <<'PY'
import os, socket, struct
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
u = socket.socket(socket.AF_UNIX); u.bind("\0lwseed")
ino = os.fstat(srv.fileno()).st_ino
for i, (which, name) in enumerate([(0, "udp"), (1, "tcp6"), (2, "unix"), (1, "tcp")]):
    text = open("/proc/self/net/" + name, "rb").read()[:8192]
    open("tests/fuzz/seeds/fuzz_procnet/%s" % name, "wb").write(bytes([which]) + struct.pack("<I", ino & 0xffffffff) + text)
PY

# small /proc files and files other processes write
mkdir -p $S/fuzz_procfiles
printf '\000' > $S/fuzz_procfiles/status; cat /proc/self/status >> $S/fuzz_procfiles/status
printf '\001' > $S/fuzz_procfiles/stat; printf '123 (a) b (c)) S 1 123 123 0 -1 4194560 0 0\n' >> $S/fuzz_procfiles/stat
printf '\002' > $S/fuzz_procfiles/perfmap; printf '7f0000001000 40 LazyCompile:~handler /srv/app.js:12\n7f0000001100 1a0 Builtin:ArrayMap\n' >> $S/fuzz_procfiles/perfmap
printf '\003' > $S/fuzz_procfiles/cgroup; printf '0::/system.slice/app.service\n' >> $S/fuzz_procfiles/cgroup
printf '\003' > $S/fuzz_procfiles/cgroup1; printf '12:pids:/\n1:name=systemd:/system.slice/app.service\n' >> $S/fuzz_procfiles/cgroup1
printf '\004' > $S/fuzz_procfiles/pidfile; printf '4242\n' >> $S/fuzz_procfiles/pidfile

# config files: the shipped one and the examples of the man page
mkdir -p $S/fuzz_config
for f in dist/*.conf; do [ -f "$f" ] && cp "$f" $S/fuzz_config/; done
printf '[report]\ndir = /var/log/loopwatch\nformats = jsonl, prom\n[target app]\nexe = /usr/bin/python3*\nthreshold = 50ms\n' > $S/fuzz_config/small.conf

# option values
mkdir -p $S/fuzz_args
printf '\00010ms' > $S/fuzz_args/dur; printf '\00164M' > $S/fuzz_args/size
printf '\0022026-11-25T02:00:30.123456Z' > $S/fuzz_args/ts
printf '\003Cache.*=50ms' > $S/fuzz_args/rule; printf '\004*.py:1?\napp.py:12' > $S/fuzz_args/glob

# report records: every record type loopwatch writes, from the integration tests' targets
mkdir -p $S/fuzz_report
if [ -n "$LW_SEED_RECORDS" ]; then
	i=0
	for f in $LW_SEED_RECORDS; do i=$((i + 1)); { printf "\\$((i % 4))"; head -c 60000 "$f"; } > $S/fuzz_report/rec$i; done
fi

# CPython memory images
cc -g -D_GNU_SOURCE -Idaemon -Ibpf -o $B/seedgen tests/fuzz/seedgen.c daemon/target/pyoffsets.c
mkdir -p $S/fuzz_pymem; $B/seedgen $S/fuzz_pymem
# asyncio Task images: fuzz_pytasks builds them; a seed is the minor version and no corruption
mkdir -p $S/fuzz_pytasks
for m in 0 1 2 3 4 5 6 7; do printf "\\$(printf %o $m)\\0\\0" > $S/fuzz_pytasks/minor3$((8 + m)); done
# 3.14: CPython 3.14.10's AsyncioDebug section (an unchanged image, the offsets it exports)
python3 -c 'import struct,sys; sys.stdout.buffer.write(bytes([6,0,0]) + struct.pack("<13Q", 168, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880))' > $S/fuzz_pytasks/debug314
printf '\003\100\000\377\001' > $S/fuzz_pytasks/flip311
printf '\216\224\230\233\216' > $S/fuzz_pytasks/callbacks_count	# a finding: a huge callback count
du -sh $S

# the CFI unwinder: a small -O2 shared object without frame pointers, registers inside its
# function (rip) and a stack of return addresses into it
mkdir -p $S/fuzz_unwind
cc -O2 -g -fomit-frame-pointer -shared -fPIC -o $B/seed_unwind.so -x c - <<'C'
extern void ext(long *);
__attribute__((noinline)) long leaf(long x) { long a[4] = { x, x + 1, x + 2, x + 3 }; ext(a); return a[x & 3]; }
long outer(long x) { return leaf(x) + leaf(x + 1) + 1; }
C
python3 - $B/seed_unwind.so $S/fuzz_unwind/so <<'PY'
import struct, subprocess, sys
so = open(sys.argv[1], "rb").read()
syms = {l.split()[2]: int(l.split()[0], 16) for l in subprocess.run(
    ["nm", sys.argv[1]], capture_output=True, text=True).stdout.splitlines() if len(l.split()) == 3}
base, sp = 0x10000, 0x7ffe0000
regs = [0] * 17
regs[7] = sp
regs[16] = base + syms["leaf"] + 8
stack = struct.pack("<8Q", 0, 0, 0, 0, base + syms["outer"] + 9, 0, 0, 0)
open(sys.argv[2], "wb").write(struct.pack("<H", len(stack)) + struct.pack("<17Q", *regs) + stack + so)
PY

# V8's jitdump (fuzz_jitdump): 2 bytes where the first read ends (LE), the function's first
# line, then the file: one written by node --perf-prof (records with line tables, their code
# bytes cut to 16), and hand-built ones (a garbage name with a 0, as node 18/20 write; cut)
mkdir -p $S/fuzz_jitdump
python3 - $S/fuzz_jitdump <<'PY'
import os, struct, subprocess, sys, tempfile
out = sys.argv[1]
def seed(name, data, cut=0xffff, first=1):
    open(os.path.join(out, name), "wb").write(struct.pack("<HB", cut, first) + data)
def rec(i, body):
    body += b"\0" * (-len(body) % 8)
    return struct.pack("<IIQ", i, 16 + len(body), 7) + body
hdr = struct.pack("<IIIIIIQQ", 0x4A695444, 1, 40, 62, 0, 4242, 1, 0)
def dbg(code, ents):
    b = struct.pack("<QQ", code, len(ents))
    for off, line, name in ents:
        b += struct.pack("<QiI", code + 0x40 + off, line, 5) + name + b"\0"
    return rec(2, b)
def load(code, size, name):
    return rec(0, struct.pack("<IIQQQQ", 4242, 4242, code, code, size, 1) + name + b"\0" + b"\xcc" * 8)
ok = hdr + dbg(0x10000, [(0, 10, b"/srv/app.js"), (0x20, 12, b"\xff"), (0x50, 15, b"\xff")]) + \
     load(0x10000, 0x100, b"JS:*handler /srv/app.js:10:1")
seed("basic", ok, first=10)
seed("basic_cut", ok, cut=90, first=10)
seed("garbage_names", hdr + dbg(0x40000, [(0, 3, b"/srv/\x01\x8f\0zz\x90garbage"), (0x10, 4, b"\xff"),
     (0x30, 9, b"\x7f\0\0\0\0\0\0\0\0\0\x45")]) + load(0x40000, 0x80, b"JS:*f /srv/x.js:3:1"), first=3)
seed("truncated", ok[:-5])
seed("absurd_n", hdr + rec(2, struct.pack("<QQ", 0x10000, 1 << 60) + b"\1" * 40) + load(0x10000, 0x100, b"JS:*a"))
node = subprocess.run(["sh", "-c", "command -v node"], capture_output=True, text=True).stdout.strip()
if node:
    d = tempfile.mkdtemp()
    open(os.path.join(d, "w.js"), "w").write(
        "function work(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }\n"
        "let t = 0; for (let k = 0; k < 3000; k++) t += work(1000); console.log(t);\n")
    subprocess.run([node, "--perf-prof", "w.js"], cwd=d, capture_output=True, check=True)
    f = [x for x in os.listdir(d) if x.startswith("jit-")][0]
    data = open(os.path.join(d, f), "rb").read()
    keep, at, prev = data[:40], 40, None
    while at + 16 <= len(data) and len(keep) < 48000:
        i, size = struct.unpack_from("<II", data, at)
        if size < 16 or at + size > len(data):
            break
        r = data[at:at + size]
        if i == 2:
            prev = r
        elif i == 0:	# a CODE_LOAD after its DEBUG_INFO (unwinding info between): code cut
            if prev is not None:
                nul = r.index(b"\0", 56)
                keep += prev + rec(0, r[16:nul + 1] + r[nul + 1:nul + 17])
            prev = None
        at += size
    seed("node", keep, cut=len(keep) // 2, first=1)
    subprocess.run(["rm", "-rf", d])
PY

# V8 interpreter frames: the unit test's frame, heap and stack copy in one image
python3 tests/fuzz/seed_v8frame.py $S
