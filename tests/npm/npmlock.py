"""The npm packages the Node.js tests and `make bench` use (express, autocannon), pinned with
their whole dependency tree in package-lock.json beside this file (written by `npm install
--package-lock-only --omit-lockfile-registry-resolved=false` in this directory), installed
without npm: Debian 12's nodejs has none, and CI has only that. Each tarball is downloaded from
the lock's `resolved` URL, checked against its `integrity` hash, and unpacked to the lock's path
under DEST/node_modules; nothing runs (these packages have no install scripts). Installed once
into a cache dir: later runs are offline.

    python3 tests/npm/npmlock.py [DEST]
"""
import base64
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "package-lock.json")
# the cache dir (LW_NPM_CACHE: another one, e.g. one a chroot's node sees too)
CACHE = os.environ.get("LW_NPM_CACHE") or "/var/cache/loopwatch-test/npm"
MAX_TARBALL = 16 << 20


def pinned(name, lock=LOCK):
    """The version the lock pins for a top-level package."""
    with open(lock) as f:
        return json.load(f)["packages"]["node_modules/" + name]["version"]


def _fetch(url, integrity, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        data = r.read(MAX_TARBALL + 1)
    if len(data) > MAX_TARBALL:
        raise RuntimeError("%s: over %d bytes" % (url, MAX_TARBALL))
    # "sha512-BASE64" (several may be given, space-separated: one that matches is enough)
    for h in integrity.split():
        algo, _, want = h.partition("-")
        if algo in ("sha512", "sha384", "sha256", "sha1"):
            got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
            if got == want:
                return data
    raise RuntimeError("%s: integrity mismatch (want %s)" % (url, integrity))


def _unpack(data, dest):
    """A package tarball's files (its top folder, "package/" or another, stripped) into dest:
    regular files and folders only, no path out of dest."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for m in tf.getmembers():
            parts = m.name.replace("\\", "/").split("/")[1:]
            if not parts or any(p in ("", ".", "..") for p in parts):
                continue
            path = os.path.join(dest, *parts)
            if m.isdir():
                os.makedirs(path, exist_ok=True)
            elif m.isfile():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with tf.extractfile(m) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(path, 0o755 if m.mode & 0o111 else 0o644)


def install(dest=CACHE, lock=LOCK, timeout=60):
    """None once dest/node_modules holds exactly the lock's packages, or the reason it could
    not be done (registry unreachable, a hash mismatch)."""
    with open(lock, "rb") as f:
        raw = f.read()
    stamp_want = hashlib.sha256(raw).hexdigest()
    stamp = os.path.join(dest, ".installed")
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)	# the test and the bench may install at once
        try:
            with open(stamp) as f:
                if f.read().strip() == stamp_want:
                    return None
        except OSError:
            pass
        pkgs = [(p, m) for p, m in json.loads(raw)["packages"].items()
                if p.startswith("node_modules/") and not m.get("link")]
        tmp = tempfile.mkdtemp(prefix=".npm-", dir=dest)
        try:
            def one(item):
                path, meta = item
                _unpack(_fetch(meta["resolved"], meta["integrity"], timeout),
                        os.path.join(tmp, path))
            with ThreadPoolExecutor(8) as ex:
                list(ex.map(one, pkgs))
            old = os.path.join(dest, "node_modules")
            if os.path.exists(old):
                shutil.rmtree(old)
            os.rename(os.path.join(tmp, "node_modules"), old)
            with open(stamp, "w") as f:
                f.write(stamp_want + "\n")
        except (OSError, RuntimeError, tarfile.TarError, KeyError) as e:
            return ("could not install the pinned npm packages (%s) into %s from the registry "
                    "(unreachable?): %s" % (os.path.relpath(lock), dest, e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


if __name__ == "__main__":
    why = install(sys.argv[1] if len(sys.argv) > 1 else CACHE)
    print(why or "installed")
    sys.exit(1 if why else 0)
