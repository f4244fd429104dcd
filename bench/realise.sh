#!/usr/bin/env bash
# Benchmark: `pystore realise` beside peers (uv, pip, zip, cp) on the same inputs, in the same run.
# Not a test: it never fails on slowness, it only reports. Usage, from the repo root:
#   bash bench/realise.sh                  # 50 packages, plus a 10/50/200-package scale table
#   PACKAGES=20 RUNS=1 bash bench/realise.sh   # quick (no scale table)
#   BENCH_DIR=/some/dir KEEP=1 bash bench/realise.sh   # keep the data afterwards
#   UV=/path/to/uv bash bench/realise.sh   # use this uv (else uv on PATH, else one installed
#                                          # with pip into $XDG_CACHE_HOME/pystore-bench/uv-venv)
#   PYSTORE_BEFORE=/path/to/old/pystore bash bench/realise.sh   # also time an older build on the
#                                          # same inputs in the same run (before/after rows)
# Inputs, all made untimed at the start: PACKAGES synthetic pure-Python wheels (a few dozen
# generated modules of a few KiB each), an interpreter archive in python-build-standalone
# install_only layout made from the machine's Debian /usr/bin/python3.11 and /usr/lib/python3.11
# (as tests/pyfixtures/mod.rs upstream_like_pbs_archive makes it), a recipe, requirements.txt and
# a pystore.lock whose `inputs` hash comes from pystore's own lock::inputs_hash (a throwaway
# cargo project built against this repo). Each number is the median of RUNS (default 3)
# wall-clock runs; caches cannot be dropped, so every side reads its inputs from the page cache.
set -euo pipefail

RUNS=${RUNS:-3}
SCALE=1
if [ -n "${PACKAGES:-}" ]; then SCALE=0; fi
PACKAGES=${PACKAGES:-50}
PYVER=3.11.2
PLATFORM=x86_64-unknown-linux-gnu
TNAME=linux-x86_64
DEBIAN_PYTHON=/usr/bin/python3.11
DEBIAN_STDLIB=/usr/lib/python3.11

REPO=$PWD
cargo build --release --quiet
PYSTORE=$REPO/target/release/pystore
# The peers run the host's python3 directly (not through a pyenv shim or similar wrapper).
PY=$(python3 -c 'import sys; print(sys.executable)')
for tool in zip unzip tar "$DEBIAN_PYTHON"; do
    command -v "$tool" >/dev/null || { echo "bench/realise.sh needs $tool" >&2; exit 1; }
done
[ -d "$DEBIAN_STDLIB" ] || { echo "bench/realise.sh needs $DEBIAN_STDLIB" >&2; exit 1; }

# --- uv: $UV, else on PATH, else installed once with pip into a venv of its own -----------------
if [ -z "${UV:-}" ]; then
    if command -v uv >/dev/null; then
        UV=$(command -v uv)
    else
        UV_VENV=${XDG_CACHE_HOME:-$HOME/.cache}/pystore-bench/uv-venv
        if [ ! -x "$UV_VENV/bin/uv" ]; then
            echo "uv not found; installing it with pip into $UV_VENV" >&2
            "$PY" -m venv "$UV_VENV"
            "$UV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
        fi
        UV=$UV_VENV/bin/uv
    fi
fi

# --- Work dir --------------------------------------------------------------------------------
OWN_DIR=0
if [ -z "${BENCH_DIR:-}" ]; then BENCH_DIR=$(mktemp -d) OWN_DIR=1; fi
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/pystore-realise-bench.$$
mkdir "$W"
# Store entries are read-only, so plain rm -rf can fail (as non-root) without chmod first.
nuke() { if [ -e "$1" ]; then chmod -R u+w "$1" && rm -rf "$1"; fi; }
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; return; fi
    nuke "$W"
    if [ "$OWN_DIR" = 1 ]; then rmdir "$BENCH_DIR"; fi
}
trap cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- The inputs hash, from pystore itself ----------------------------------------------------
# A throwaway cargo project beside the data; it shares this repo's target dir, lock and release
# profile so that only the tiny binary is compiled (pystore and its dependencies are reused).
echo "building the inputs-hash helper ..." >&2
HELPER=$W/inputs-hash
mkdir -p "$HELPER/src"
cat >"$HELPER/Cargo.toml" <<EOF
[package]
name = "pystore-bench-inputs-hash"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
pystore = { path = "$REPO" }

[profile.release]
debug = "line-tables-only"

[workspace]
EOF
cat >"$HELPER/src/main.rs" <<'EOF'
//! Prints pystore's lock `inputs` hash: REQUIREMENTS PYTHON TARGET-NAME PLATFORM.
use pystore::lock::inputs_hash;
use pystore::python::target::TargetSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [requirements, python, name, platform] = args.as_slice() else {
        return Err("usage: REQUIREMENTS PYTHON TARGET-NAME PLATFORM".into());
    };
    let requirements = pystore::python::requirements::read(std::path::Path::new(requirements))?;
    let target = TargetSpec::new(name, platform, None)?;
    println!("{}", inputs_hash(&requirements, python, &[&target]));
    Ok(())
}
EOF
cp "$REPO/Cargo.lock" "$HELPER/Cargo.lock"
(cd "$HELPER" && CARGO_TARGET_DIR=$REPO/target cargo build --release --quiet --offline 2>/dev/null) ||
    (cd "$HELPER" && CARGO_TARGET_DIR=$REPO/target cargo build --release --quiet)
INPUTS_HASH=$REPO/target/release/pystore-bench-inputs-hash

# --- Data generators (python3, deterministic) -----------------------------------------------
cat >"$W/gen.py" <<'EOF'
import base64, hashlib, io, os, random, stat, sys, tarfile, zipfile

WORDS = ("alpha beta gamma delta record value cache index table frame parse render token stream "
         "buffer config option handler request response session client server widget layout "
         "matrix vector signal event queue worker result status")
WORDS = WORDS.split()

def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."

def module(rng, size):
    """Plausible, importable Python of about `size` bytes."""
    out = [f'"""{sentence(rng, 12)}\n\n{sentence(rng, 20)}\n"""\n',
           "from __future__ import annotations\n\nimport os\nimport re\n\n"]
    n = 0
    while sum(map(len, out)) < size:
        n += 1
        cls = rng.choice(WORDS).capitalize() + rng.choice(WORDS).capitalize() + str(n)
        a, b = rng.sample(WORDS, 2)
        out.append(
            f"\n\nclass {cls}:\n    \"\"\"{sentence(rng, 14)}\"\"\"\n\n"
            f"    def __init__(self, {a}=None, {b}=0):\n        self.{a} = {a}\n        self.{b} = {b}\n\n"
            f"    def {rng.choice(WORDS)}_{n}(self, items):\n        \"\"\"{sentence(rng, 10)}\"\"\"\n"
            f"        result = []\n        for item in items:\n            if item and re.match(r'^{a}', str(item)):\n"
            f"                result.append((item, self.{b} + {rng.randint(1, 999)}))\n"
            f"        return result\n\n"
            f"    def __repr__(self):\n        return f'{cls}({{self.{a}!r}}, {{self.{b}!r}})'\n")
    return "".join(out).encode()

def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def wheel(outdir, i):
    rng = random.Random(i)
    name, version = f"pkg_{i:03d}", "1.0.0"
    files = [(f"{name}/__init__.py", f'"""{name}."""\nfrom .core import *  # noqa\n\n__version__ = "{version}"\n'.encode()),
             (f"{name}/core.py", module(rng, rng.randint(2000, 9000))),
             (f"{name}/py.typed", b"")]
    for sub in ("io", "model", "util"):
        files.append((f"{name}/{sub}/__init__.py", module(rng, 600)))
        for k in range(rng.randint(9, 13)):
            files.append((f"{name}/{sub}/{rng.choice(WORDS)}_{k}.py", module(rng, rng.randint(1500, 9000))))
    info = f"{name}-{version}.dist-info"
    files.append((f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
                  f"Summary: {sentence(rng, 6)}\nRequires-Python: >=3.8\n".encode()))
    files.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: pystore-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    files.append((f"{info}/top_level.txt", f"{name}\n".encode()))
    record = "".join(f"{p},{record_hash(d)},{len(d)}\n" for p, d in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    path = os.path.join(outdir, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, d in files:
            zi = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o100644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)

# tests/pyfixtures/mod.rs STDLIB_SKIP and add_tree, and UPSTREAM_SITE_SHIM.
SKIP = {"__pycache__", "test", "idlelib", "tkinter", "turtledemo", "lib2to3", "pydoc_data",
        "ensurepip", "EXTERNALLY-MANAGED", "sitecustomize.py", "dist-packages", "site-packages"}
SHIM = (b"import os, site, sys\n"
        b"site.addsitedir(os.path.join(sys.prefix, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'))\n")

def info(name, kind, mode, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, link, 0
    return ti

def add_file(tar, name, data, mode):
    tar.addfile(info(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))

def add_tree(tar, src, prefix):
    in_config = os.path.basename(src).startswith("config-")
    for name in sorted(os.listdir(src)):
        if name in SKIP or (in_config and name != "Makefile"):
            continue
        path, member = os.path.join(src, name), f"{prefix}/{name}"
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            tar.addfile(info(member, tarfile.DIRTYPE, 0o755))
            add_tree(tar, path, member)
        elif stat.S_ISLNK(st.st_mode):
            tar.addfile(info(member, tarfile.SYMTYPE, 0o777, link=os.readlink(path)))
        else:
            with open(path, "rb") as f:
                add_file(tar, member, f.read(), st.st_mode & 0o777)

def interpreter(path, python, stdlib):
    with tarfile.open(path, "w:gz", compresslevel=1, format=tarfile.GNU_FORMAT) as tar:
        for d in ("python", "python/bin"):
            tar.addfile(info(d, tarfile.DIRTYPE, 0o755))
        with open(python, "rb") as f:
            add_file(tar, "python/bin/python3.11", f.read(), 0o755)
        tar.addfile(info("python/bin/python3", tarfile.SYMTYPE, 0o777, link="python3.11"))
        for d in ("python/lib", "python/lib/python3.11"):
            tar.addfile(info(d, tarfile.DIRTYPE, 0o755))
        add_tree(tar, stdlib, "python/lib/python3.11")
        add_file(tar, "python/lib/python3.11/sitecustomize.py", SHIM, 0o644)

def lock(path, inputs, python, tname, platform, wheels):
    out = ["# Written by `pystore lock`; edit the requirements and run it again instead of editing this.\n",
           f'version = 1\npython = "{python}"\ninputs = "{inputs}"\n\n',
           f'[[targets]]\nname = "{tname}"\nplatform = "{platform}"\n']
    for line, w in enumerate(sorted(wheels), start=1):
        name, version = os.path.basename(w).split("-")[:2]
        with open(w, "rb") as f:
            data = f.read()
        out.append(f'\n[[targets.packages]]\nname = "{name.replace("_", "-")}"\nversion = "{version}"\n'
                   f'wheel = "{os.path.basename(w)}"\nsize = {len(data)}\nsha256 = "{hashlib.sha256(data).hexdigest()}"\n'
                   f'required-by = ["requirements.txt:{line}"]\n')
    with open(path, "w") as f:
        f.write("".join(out))

cmd = sys.argv[1]
if cmd == "wheels":
    os.makedirs(sys.argv[2], exist_ok=True)
    for i in range(int(sys.argv[3])):
        wheel(sys.argv[2], i)
elif cmd == "interpreter":
    interpreter(*sys.argv[2:5])
elif cmd == "lock":
    lock(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:])
EOF

SIZES=("$PACKAGES")
if [ "$SCALE" = 1 ]; then SIZES=(10 "$PACKAGES" 200); fi
MAXN=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -1)

echo "generating $MAXN wheels and the interpreter archive in $W ..." >&2
python3 "$W/gen.py" wheels "$W/wheels-all" "$MAXN"
ARCHIVE=$W/interp/cpython-$PYVER-$PLATFORM-install_only.tar.gz
mkdir -p "$W/interp"
python3 "$W/gen.py" interpreter "$ARCHIVE" "$DEBIAN_PYTHON" "$DEBIAN_STDLIB"
ARCHIVE_SHA=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
# The peers copy the interpreter unpacked (unpacking it is not part of their timed work).
mkdir -p "$W/interp-tree"
tar -xzf "$ARCHIVE" -C "$W/interp-tree"
INTERP_TREE=$W/interp-tree/python

# make_recipe N: wheelhouse $W/wh-N (hard links to the first N wheels) and recipe $W/recipes/bench-N.
make_recipe() {
    local n=$1 r=$W/recipes/bench-$1 wh=$W/wh-$1 i
    mkdir -p "$r" "$wh"
    : >"$r/requirements.txt"
    for i in $(seq 0 $((n - 1))); do
        ln "$W/wheels-all/pkg_$(printf %03d "$i")-1.0.0-py3-none-any.whl" "$wh/"
        printf 'pkg-%03d\n' "$i" >>"$r/requirements.txt"
    done
    cat >"$r/recipe.toml" <<EOF
name = "bench"
version = "1.0.0"
python = "$PYVER"

[[targets]]
name = "$TNAME"
platform = "$PLATFORM"
interpreter = { url = "file://$ARCHIVE", sha256 = "$ARCHIVE_SHA" }
EOF
    python3 "$W/gen.py" lock "$r/pystore.lock" "$("$INPUTS_HASH" "$r/requirements.txt" "$PYVER" "$TNAME" "$PLATFORM")" \
        "$PYVER" "$TNAME" "$PLATFORM" "$wh"/*.whl
}
for n in "${SIZES[@]}"; do make_recipe "$n"; done

# --- Timing helpers -------------------------------------------------------------------------
now() { date +%s.%N; }
# time_cmd VAR CMD...: append the wall-clock seconds of CMD to the array VAR. An untimed sync
# first: pystore's syncfs would otherwise also flush what the side timed before it left dirty.
time_cmd() {
    local -n samples=$1
    shift
    local t0 t1
    sync
    t0=$(now)
    "$@"
    t1=$(now)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1e6}'; }
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

pst() { "$PYSTORE" --store "$1" -q "${@:2}"; }
SITE=lib/python3.11/site-packages

# The pystore side: realise recipe N into store $1 (copying the ZIP to $2 when given).
BEFORE=${PYSTORE_BEFORE:-}
realise_before() { # STORE N OUT: the same as realise, with the older build
    "$BEFORE" --store "$1" -q --find-links "$W/wh-$2" realise "$W/recipes/bench-$2" --out "$3" >/dev/null
}
realise() { # STORE N [OUT]
    if [ -n "${3:-}" ]; then
        pst "$1" --find-links "$W/wh-$2" realise "$W/recipes/bench-$2" --out "$3" >/dev/null
    else
        pst "$1" --find-links "$W/wh-$2" realise "$W/recipes/bench-$2" >/dev/null
    fi
}
# The peers: the unpacked interpreter copied into T, the N wheels installed into T's
# site-packages, T zipped (-X: no extra attributes, -y: symlinks as links, as pystore stores them).
uv_install() { # N TARGET CACHE
    "$UV" pip install --quiet --no-config --python "$PY" --target "$2/$SITE" --no-deps --no-index \
        --find-links "$W/wh-$1" --cache-dir "$3" "$W/wh-$1"/*.whl
}
pip_install() { # N TARGET
    "$PY" -m pip install --quiet --isolated --disable-pip-version-check --root-user-action=ignore --target "$2/$SITE" --no-deps \
        --no-index --no-compile --find-links "$W/wh-$1" "$W/wh-$1"/*.whl
}
zip_tree() { (cd "$1" && zip -X -r -q -y "$2" .); }
peer_uv() { cp -r "$INTERP_TREE" "$2" && uv_install "$1" "$2" "$3" && zip_tree "$2" "$4"; }
peer_pip() { cp -r "$INTERP_TREE" "$2" && pip_install "$1" "$2" && zip_tree "$2" "$3"; }

# cold N PREFIX: RUNS cold realises (fresh store) and cold uv (fresh cache) / pip, interleaved.
# Leaves the last run's store at $W/store-N, uv cache at $W/uvcache-N, trees at $W/{uv,pip}-N.
cold() {
    local n=$1 with_pip=$2
    declare -g -a "cold_p_$n=()" "cold_u_$n=()" "cold_q_$n=()" "cold_b_$n=()"
    local -n p_t=cold_p_$n u_t=cold_u_$n q_t=cold_q_$n b_t=cold_b_$n
    p_t=() u_t=() q_t=() b_t=()
    for _ in $(seq "$RUNS"); do
        nuke "$W/store-$n"
        nuke "$W/out-$n"
        time_cmd p_t realise "$W/store-$n" "$n" "$W/out-$n"
        if [ -n "$BEFORE" ]; then
            nuke "$W/store-before-$n"
            nuke "$W/out-before-$n"
            time_cmd b_t realise_before "$W/store-before-$n" "$n" "$W/out-before-$n"
        fi
        nuke "$W/uv-$n"
        nuke "$W/uvcache-$n"
        rm -f "$W/uv-$n.zip"
        time_cmd u_t peer_uv "$n" "$W/uv-$n" "$W/uvcache-$n" "$W/uv-$n.zip"
        if [ "$with_pip" = 1 ]; then
            nuke "$W/pip-$n"
            rm -f "$W/pip-$n.zip"
            time_cmd q_t peer_pip "$n" "$W/pip-$n" "$W/pip-$n.zip"
        fi
    done
}

N=$PACKAGES
# --- 1. cold realise vs uv / pip + zip -------------------------------------------------------
echo "1. cold realise of $N packages vs uv/pip install + zip" >&2
cold "$N" 1
S=$W/store-$N
JSON=$("$PYSTORE" --store "$S" -q --json --find-links "$W/wh-$N" realise "$W/recipes/bench-$N")
BUNDLE=$(python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["bundle"])' <<<"$JSON")
ZIP=$(python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["zip"])' <<<"$JSON")

# --- 2. warm no-op realise vs uv with a warm cache into a fresh target -----------------------
echo "2. warm realise vs uv install from a warm cache" >&2
warm_p=() warm_u=()
for _ in $(seq "$RUNS"); do
    time_cmd warm_p realise "$S" "$N" "$W/out-$N"
    nuke "$W/uvwarm"
    time_cmd warm_u uv_install "$N" "$W/uvwarm" "$W/uvcache-$N"
done

# --- 3. ZIP materialisation alone ------------------------------------------------------------
# A new SOURCE_DATE_EPOCH gives a new ZIP entry while the bundle entry stays valid, so pystore
# plans and writes the ZIP only. Days apart, since DOS times have a 2-second resolution.
echo "3. ZIP of the bundle: pystore vs zip, cp -r, cat + cp" >&2
zip_p=() zip_z=() zip_c=() zip_f=() zip_n=() zip_b=()
floor() { find "$BUNDLE" -type f -print0 | xargs -0 cat >/dev/null && cp "$ZIP" "$W/floor.zip"; }
for k in $(seq "$RUNS"); do
    # With the deflate cache the first realise filled (the usual case: a bundle shares most files
    # with the one before), then without any cache (cache/ removed: every member deflated).
    time_cmd zip_p env SOURCE_DATE_EPOCH=$((1700000000 + k * 86400)) "$PYSTORE" --store "$S" -q \
        --find-links "$W/wh-$N" realise "$W/recipes/bench-$N" >/dev/null
    nuke "$S/cache"
    time_cmd zip_n env SOURCE_DATE_EPOCH=$((1750000000 + k * 86400)) "$PYSTORE" --store "$S" -q \
        --find-links "$W/wh-$N" realise "$W/recipes/bench-$N" >/dev/null
    if [ -n "$BEFORE" ]; then
        time_cmd zip_b env SOURCE_DATE_EPOCH=$((1700000000 + k * 86400)) "$BEFORE" --store "$W/store-before-$N" -q \
            --find-links "$W/wh-$N" realise "$W/recipes/bench-$N" >/dev/null
    fi
    rm -f "$W/zip-peer.zip"
    time_cmd zip_z zip_tree "$BUNDLE" "$W/zip-peer.zip"
    nuke "$W/bundle-copy"
    time_cmd zip_c cp -r "$BUNDLE" "$W/bundle-copy"
    rm -f "$W/floor.zip"
    time_cmd zip_f floor
done
n_zips=$(find "$S/entries" -maxdepth 1 -name '*.zip' | wc -l)
[ "$n_zips" = $((2 * RUNS + 1)) ] || echo "warning: expected $((2 * RUNS + 1)) ZIP entries, found $n_zips" >&2

# --- 4. scale -------------------------------------------------------------------------------
if [ "$SCALE" = 1 ]; then
    for n in "${SIZES[@]}"; do
        if [ "$n" != "$N" ]; then
            echo "4. cold realise of $n packages vs uv install + zip" >&2
            cold "$n" 0
        fi
    done
fi

# --- Checks: determinism, and the ZIP works unzipped ------------------------------------------
echo "checks ..." >&2
nuke "$W/det-a" && nuke "$W/det-b"
"$PYSTORE" --store "$W/det-a" -q --find-links "$W/wh-$N" realise "$W/recipes/bench-$N" --out "$W/det-a-out" >/dev/null
"$PYSTORE" --store "$W/det-b" -q -j 1 --find-links "$W/wh-$N" realise "$W/recipes/bench-$N" --out "$W/det-b-out" >/dev/null
SHA_A=$(sha256sum "$W"/det-a-out/*.zip | cut -d' ' -f1)
SHA_B=$(sha256sum "$W"/det-b-out/*.zip | cut -d' ' -f1)
SHA_C=$(sha256sum "$W"/out-"$N"/*.zip | cut -d' ' -f1)
mkdir -p "$W/unzipped/some where"
UNZ="$W/unzipped/some where"
unzip -q "$W"/det-a-out/*.zip -d "$UNZ"
RUN_OUT=$(env -i "$UNZ/bin/python3.11" -I -c \
    "import pkg_000, sys; print(pkg_000.__version__, pkg_000.__file__, sys.prefix, sep=' | ')" 2>&1) &&
    RUN_OK=ok || RUN_OK=FAILED

# --- Report ---------------------------------------------------------------------------------
ZIP_BYTES=$(stat -c %s "$ZIP")
BUNDLE_BYTES=$(tree_bytes "$BUNDLE")
BUNDLE_FILES=$(find "$BUNDLE" -type f | wc -l)
PKG_BYTES=$(tree_bytes "$BUNDLE/$SITE")
UV_FILES=$(find "$W/uv-$N" -type f | wc -l)
PIP_FILES=$(find "$W/pip-$N" -type f | wc -l)
row() { # OP PYSTORE_SECS PEER PEER_SECS
    printf '| %s | %ss | %s: %ss | %s |\n' "$1" "$2" "$3" "$4" "$(div "$2" "$4")"
}
m() { local -n a=$1; median "${a[@]}"; }
echo
echo "### pystore realise benchmark: $N packages, median of $RUNS (wall clock)"
echo
echo "Bundle: $BUNDLE_FILES files, $(mb "$BUNDLE_BYTES") MB uncompressed (packages $(mb "$PKG_BYTES") MB," \
    "interpreter $(mb $((BUNDLE_BYTES - PKG_BYTES))) MB); pystore ZIP $(mb "$ZIP_BYTES") MB," \
    "zip -6 of the same tree $(mb "$(stat -c %s "$W/zip-peer.zip")") MB. MB = 10^6 bytes."
echo
echo "| operation | pystore | peer | ratio (pystore / peer; < 1: pystore faster) |"
echo "|---|---|---|---|"
row "cold realise, $N pkgs (fresh store / fresh cache)" "$(m cold_p_$N)" "cp -r interpreter + uv pip install --target + zip" "$(m cold_u_$N)"
row "cold realise, $N pkgs" "$(m cold_p_$N)" "cp -r interpreter + pip install --target --no-compile + zip" "$(m cold_q_$N)"
row "warm no-op realise, $N pkgs (with --out copy)" "$(m warm_p)" "uv pip install --target, warm cache, fresh target (no zip)" "$(m warm_u)"
row "ZIP alone (new SOURCE_DATE_EPOCH)" "$(m zip_p)" "zip -X -r -y of the bundle tree" "$(m zip_z)"
row "ZIP alone (new SOURCE_DATE_EPOCH)" "$(m zip_p)" "cp -r of the bundle tree" "$(m zip_c)"
row "ZIP alone (new SOURCE_DATE_EPOCH)" "$(m zip_p)" "floor: cat every bundle file + cp a ZIP-sized file" "$(m zip_f)"
row "ZIP alone, no deflate cache (cache/ removed)" "$(m zip_n)" "zip -X -r -y of the bundle tree" "$(m zip_z)"
row "ZIP alone, no deflate cache (cache/ removed)" "$(m zip_n)" "cp -r of the bundle tree" "$(m zip_c)"
if [ -n "$BEFORE" ]; then
    row "before/after: cold realise, $N pkgs" "$(m cold_p_$N)" "the same with PYSTORE_BEFORE" "$(m cold_b_$N)"
    row "before/after: ZIP alone" "$(m zip_p)" "the same with PYSTORE_BEFORE" "$(m zip_b)"
fi
if [ "$SCALE" = 1 ]; then
    for n in "${SIZES[@]}"; do
        row "scale: cold realise, $n pkgs" "$(m cold_p_$n)" "cp -r interpreter + uv install + zip" "$(m cold_u_$n)"
    done
fi
echo
SAME=DIFFERENT
if [ "$SHA_A" = "$SHA_B" ] && [ "$SHA_A" = "$SHA_C" ]; then SAME="identical, and to the timed runs' ZIP"; fi
echo "- determinism: sha256 of the ZIP realised into two fresh stores (-j $(nproc) and -j 1): $SHA_A / $SHA_B ($SAME)"
echo "- unzipped elsewhere, env -i bin/python3.11 -I -c 'import pkg_000': $RUN_OK ($RUN_OUT)"
echo "- files: pystore bundle $BUNDLE_FILES, uv tree $UV_FILES, pip tree $PIP_FILES" \
    "(peers add their own dist-info files; pystore adds launchers and pystore-manifest.json)"
echo "- $("$PYSTORE" --version) (release, -j default = nproc = $(nproc)); $("$UV" --version);" \
    "$("$PY" -m pip --version | cut -d' ' -f1-2) ($("$PY" --version))"
echo "- $(zip -v | head -2 | tr '\n' ' ' | tr -s ' ')"
echo "- bench dir file system: $(df --output=fstype "$W" | tail -1); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- peers: uv uses its default link mode (hard links from its cache) and no bytecode; pip --no-compile;" \
    "pystore also decompresses the interpreter's .tar.gz, which the peers get unpacked (cp -r)"
