"""Fetches every wheel a pystore.lock pins into a cache directory, with pip, and checks each
file's sha256 against the lock.

Usage: python3 fetch_wheels.py LOCK CACHE_DIR

pip knows its own index (pip.conf, PIP_INDEX_URL); it is asked, per target, for exactly the
locked `name==version` lines with `--hash=sha256:` from the lock, `--no-deps --only-binary=:all:`
and the target's platform, so it picks the locked file (the only one with that hash). Files
already in the cache with the right hash are not fetched again.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib

PLATFORMS = {
    "x86_64-unknown-linux-gnu": ["manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "x86_64-pc-windows-msvc": ["win_amd64"],
}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    lock_path, cache = sys.argv[1], sys.argv[2]
    os.makedirs(cache, exist_ok=True)
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    python = ".".join(lock["python"].split(".")[:2])
    fetched = 0
    for target in lock["targets"]:
        missing = [
            p
            for p in target["packages"]
            if not (
                os.path.isfile(os.path.join(cache, p["wheel"]))
                and sha256(os.path.join(cache, p["wheel"])) == p["sha256"]
            )
        ]
        if not missing:
            continue
        platforms = PLATFORMS[target["platform"]]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            for p in missing:
                req.write(f"{p['name']}=={p['version']} --hash=sha256:{p['sha256']}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--require-hashes", "--dest", cache,
               "--implementation", "cp", "--python-version", python, "-r", req.name]
        for platform in platforms:
            cmd += ["--platform", platform]
        subprocess.run(cmd, check=True)
        os.unlink(req.name)
        fetched += len(missing)
    bad = []
    for target in lock["targets"]:
        for p in target["packages"]:
            path = os.path.join(cache, p["wheel"])
            if not os.path.isfile(path):
                bad.append(f"{target['name']}: pip did not fetch {p['wheel']}")
            elif sha256(path) != p["sha256"] or os.path.getsize(path) != p["size"]:
                bad.append(f"{target['name']}: {p['wheel']} does not match the lock's sha256/size")
    if bad:
        sys.exit("\n".join(bad))
    total = sum(len(t["packages"]) for t in lock["targets"])
    print(f"wheels: {total} locked files checked against {lock_path} ({fetched} fetched, the rest cached)")


if __name__ == "__main__":
    main()
