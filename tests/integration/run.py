#!/usr/bin/env python3
"""Run loopwatch's integration tests (root needed: they load BPF programs).

    python3 tests/integration/run.py [-k PATTERN] [-v]

Environment: LW_PYTHONS=debian,3.12 limits the interpreters tried.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lwtest  # noqa: E402


def main():
    if os.geteuid() != 0:
        print("integration tests need root (BPF programs and uprobes)", file=sys.stderr)
        return 1
    if not os.path.exists(lwtest.LOOPWATCH):
        print("build first: make", file=sys.stderr)
        return 1
    print("interpreters:", ", ".join(l for l, _ in lwtest.pythons()) or "none")
    argv = [sys.argv[0]] + sys.argv[1:]
    loader = unittest.TestLoader()
    if "-k" in argv:
        i = argv.index("-k")
        loader.testNamePatterns = ["*%s*" % argv[i + 1]]
        del argv[i:i + 2]
    suite = loader.discover(HERE, pattern="test_*.py")
    verbosity = 2 if "-v" in argv else 1
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
