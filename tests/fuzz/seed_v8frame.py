"""Writes tests/fuzz/seeds/fuzz_v8frame/frame: an interpreter frame as test_v8frame.c builds it
(BytecodeArray, source-position table, JSFunction, SharedFunctionInfo, Script with line ends and
a one-byte source), heap and stack copy in one image at fuzz_v8frame.c's BASE. Node 20's
offsets; bytes 0..7 the return address, 8..9 a bytecode offset."""
import os
import struct
import sys

BASE = 0x1000
img = bytearray(0x1000)


def p64(o, v):
    img[o:o + 8] = struct.pack('<Q', v & (2**64 - 1))


def tag(o):
    return BASE + o + 1


def smi(v):
    return (v << 32) & (2**64 - 1)


def vlq(v):
    u = ((v << 1) ^ (v >> 63)) & (2**64 - 1)
    out = bytearray()
    while True:
        b = u & 0x7f
        u >>= 7
        out.append(b | (0x80 if u else 0))
        if not u:
            return out


src = b"function f() {\n  a();\n  b();\n}\n"
tab, pc, pp = bytearray(), -1, 0
for c, s in ((0, 17), (10, 24)):
    raw = (s + 1) << 1
    tab += vlq(c - pc) + vlq(raw - pp)
    pc, pp = c, raw
maps = {}
for i, ty in enumerate((191, 190, 175, 262, 167, 2100, 8)):
    maps[ty] = 0x100 + 0x20 * i
    img[maps[ty] + 12:maps[ty] + 14] = struct.pack('<H', ty)
BA, SPT, FN, SFI, SC, ENDS, SRC = 0x300, 0x380, 0x400, 0x440, 0x480, 0x500, 0x600
p64(BA, tag(maps[191])); p64(BA + 8, smi(40)); p64(BA + 32, tag(SPT))
p64(SPT, tag(maps[190])); p64(SPT + 8, smi(len(tab))); img[SPT + 16:SPT + 16 + len(tab)] = tab
p64(FN, tag(maps[2100])); p64(FN + 24, tag(SFI))
p64(SFI, tag(maps[262])); p64(SFI + 32, tag(SC))
p64(SC, tag(maps[167])); p64(SC + 8, tag(SRC)); p64(SC + 56, tag(ENDS))
ends = [i for i, c in enumerate(src) if c == 10]
p64(ENDS, tag(maps[175])); p64(ENDS + 8, smi(len(ends)))
for i, e in enumerate(ends):
    p64(ENDS + 16 + 8 * i, smi(e))
p64(SRC, tag(maps[8]))
img[SRC + 12:SRC + 16] = struct.pack('<i', len(src))
img[SRC + 16:SRC + 16 + len(src)] = src
RET = 0x5000123
p64(0xd00, BASE + 0xe00)
p64(0xd08, RET)
p64(0xe00 - 32, tag(BA)); p64(0xe00 - 40, smi(12 + 54 - 1)); p64(0xe00 - 16, tag(FN))
p64(0, RET)
img[8:10] = struct.pack('<H', 12)
out = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/seeds", "fuzz_v8frame")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "frame"), "wb") as f:
    f.write(img)
