"""A hostile target for loopwatch's memory budgets (issue 19 item 4; test_limits.Hostile).

    asyncio_hostile.py GOFILE NSITES DEPTH MAP_MB

Makes NSITES callbacks, each a chain of DEPTH distinct code objects (made with code.replace:
distinct names, long file names, an 8 KiB line table each) whose innermost one blocks ~1.5 ms
in clock_nanosleep. The syscall is made by a few bytes of machine code in an anonymous
executable page (as a JIT's code would be), so the blocking call's innermost native frame is
named only by the JIT perf map /tmp/perf-PID.map. While the callbacks run, a thread appends
MAP_MB MB of ~1,000-byte lines with addresses that name nothing to that perf map (the file
grows while loopwatch reads it); the page's own line is written last, after them all.
Prints "ready" when it may be attached, waits for GOFILE, prints a JSON line with what it did
and exits. Only the standard library (ctypes, mmap).
"""
import asyncio
import ctypes
import json
import mmap
import os
import sys
import threading
import time
import types

go, nsites, depth, map_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

# clock_nanosleep(CLOCK_MONOTONIC, 0, req=arg1, NULL), then ret
CODE = bytes([0x48, 0x89, 0xfa,                    # mov rdx, rdi
              0xbf, 0x01, 0x00, 0x00, 0x00,        # mov edi, 1
              0x31, 0xf6,                          # xor esi, esi
              0x45, 0x31, 0xd2,                    # xor r10d, r10d
              0xb8, 0xe6, 0x00, 0x00, 0x00,        # mov eax, 230
              0x0f, 0x05,                          # syscall
              0xc3])                               # ret
page = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(CODE)
stub_addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
stub = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p)(stub_addr)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


req = Timespec(0, 1500000)
req_p = ctypes.addressof(req)


def block(chain, i):
    stub(req_p)


def step(chain, i):
    return chain[i](chain, i + 1)


# 8 KiB of "no location" entries after the real ones: a valid, long line table
TABLE_PAD = bytes([0xf8]) * 8192


def distinct(fn, name, filename):
    c = fn.__code__
    kw = dict(co_name=name, co_filename=filename, co_linetable=c.co_linetable + TABLE_PAD)
    if sys.version_info >= (3, 11):
        kw["co_qualname"] = name
    return types.FunctionType(c.replace(**kw), globals(), name)


LONG = "x" * 200
chains = []
for i in range(nsites):
    fns = [distinct(step, "hostile_%d_%d_%s" % (i, j, LONG[:40]),
                    "/hostile/%s/site_%d_%d.py" % (LONG, i, j)) for j in range(depth - 1)]
    fns.append(distinct(block, "hostile_block_%d" % i, "/hostile/%s/block_%d.py" % (LONG, i)))
    chains.append(fns)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)

perf_map = "/tmp/perf-%d.map" % os.getpid()
done = threading.Event()
written = [0]


def grow_map():
    name = "hostile_jit_" + "y" * 960
    with open(perf_map, "a") as f:
        addr = 0x100000000000
        while written[0] < map_mb * 1000000 and not done.is_set():
            lines = "".join("%x 40 %s_%d\n" % (addr + 64 * k, name, addr + k) for k in range(1000))
            addr += 64 * 1000
            f.write(lines)
            f.flush()
            written[0] += len(lines)
            time.sleep(0.002)
        # the stub's own line, after them all: named only once the whole map is read
        f.write("%x %x hostile_stub\n" % (stub_addr, len(CODE)))


async def main():
    loop = asyncio.get_running_loop()
    t = threading.Thread(target=grow_map)
    t.start()
    for c in chains:
        loop.call_soon(c[0], c, 1)
        await asyncio.sleep(0)
    t.join()
    # a few more blocks once the stub's line is in the map
    for k in range(20):
        loop.call_soon(chains[k % len(chains)][0], chains[k % len(chains)], 1)
        await asyncio.sleep(0.06)

try:
    asyncio.run(main())
finally:
    done.set()
print(json.dumps({"sites": nsites, "depth": depth, "map_bytes": written[0],
                  "stub": "%x" % stub_addr}), flush=True)
try:
    os.unlink(perf_map)
except OSError:
    pass
