#!/usr/bin/env bash
# Benchmark on a closure of real wheels: `pystore realise` beside the hand-made peer, in one run.
# Not a test: it never fails on slowness, it only reports. Usage, from the repo root:
#   bash bench/real.sh               # median of RUNS (default 3)
#   RUNS=1 KEEP=1 bash bench/real.sh # one run each, keep the data
#   UV=/path/to/uv bash bench/real.sh
#
# Inputs (untimed, made first): the real cp311 wheels tests/acceptance/samai311/pystore.lock pins
# for Linux (psycopg2-binary, lxml, anthropic, openai and their dependencies), fetched by pip and
# checked against the lock's sha256 (tests/acceptance/fetch_wheels.py; cached in
# target/acceptance/wheels), and a CPython 3.11 archive in python-build-standalone layout made
# from Debian's python3.11 (the acceptance helper), with the standard library's pycs as
# python-build-standalone's archives carry them (`STDLIB_PYCS=0`: without, so that pystore
# compiles the standard library too and the peer ships it uncompiled).
#
# Rows (wall clock; the peer is measured in the same run, alternating with pystore):
# - cold: pystore realise into a fresh store (the wheels a local directory, --find-links)
#   vs the peer: unpack the same archive, `uv pip install --compile-bytecode --target` its
#   site-packages from the same directory with a cold uv cache, import the validated modules, and
#   `zip -X -r` the tree;
# - no-op: realise again vs `uv pip install --target` again (warm cache, everything installed);
#   for reference also the same install into a new target from the warm cache;
# - one changed: realise with idna 3.10 instead of 3.20, the store holding the rest, vs pystore cold;
# - lock is not measured here (it needs the real index): see bench/README.md.
set -euo pipefail
RUNS=${RUNS:-3}
REPO=$PWD
out=$REPO/target/acceptance
cargo build --release --locked --quiet --bin pystore
cargo build --locked --quiet --example acceptance
PYSTORE=$REPO/target/release/pystore
export PYSTORE_PIP_PYTHON=""   # the index is never asked: every wheel is local

# --- uv: $UV, else on PATH, else installed once with pip into a venv of its own ----------------
if [ -z "${UV:-}" ]; then
    if command -v uv >/dev/null; then
        UV=$(command -v uv)
    else
        UV_VENV=${XDG_CACHE_HOME:-$HOME/.cache}/pystore-bench/uv-venv
        if [ ! -x "$UV_VENV/bin/uv" ]; then
            echo "uv not found; installing it with pip into $UV_VENV" >&2
            python3 -m venv "$UV_VENV"
            "$UV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
        fi
        UV=$UV_VENV/bin/uv
    fi
fi
command -v zip >/dev/null || { echo "bench/real.sh needs zip" >&2; exit 1; }

# --- Inputs ---------------------------------------------------------------------------------------
lock=tests/acceptance/samai311/pystore.lock
python3 tests/acceptance/fetch_wheels.py "$lock" "$out/wheels" >&2
if [ "${STDLIB_PYCS:-1}" = 0 ]; then
    archive=$("$REPO/target/debug/examples/acceptance" interpreter "$out/interpreters")
else
    archive=$("$REPO/target/debug/examples/acceptance" interpreter-with-pycs "$out/interpreters-pycs")
fi
W=$(mktemp -d)
nuke() { if [ -e "$1" ]; then chmod -R u+w "$1" && rm -rf "$1"; fi; }
# Between timed runs, old trees are moved aside, not deleted: on an ext4 without a journal (as on
# these VMs) each new inode is allocated past every inode freed in the last minutes
# (`recently_deleted` in the kernel's find_inode_bit), so a run that follows a mass deletion pays
# up to a millisecond per file it creates. Moving aside costs one rename; the trash goes at exit.
retire() { if [ -e "$1" ]; then mkdir -p "$W/trash"; mv "$1" "$(mktemp -d "$W/trash/XXXXXX")/"; fi; }
trap '[ "${KEEP:-0}" = 1 ] && echo "kept $W" >&2 || nuke "$W"' EXIT

recipe_with() { # DIR LOCK: the acceptance recipe, its Linux target given this archive
    mkdir -p "$1"
    cp tests/acceptance/samai311/requirements.txt "$1/"
    cp "$2" "$1/pystore.lock"
    python3 - tests/acceptance/samai311/recipe.toml "$1/recipe.toml" "$archive" <<'PY'
import hashlib, sys
src, dest, archive = sys.argv[1:]
digest = hashlib.sha256(open(archive, "rb").read()).hexdigest()
lines = []
for text in open(src):
    lines.append(text)
    if text.startswith('platform = "x86_64-unknown-linux-gnu"'):
        lines.append(f'interpreter = {{ url = "file://{archive}", sha256 = "{digest}" }}\n')
open(dest, "w").write("".join(lines))
PY
}
recipe_with "$W/recipe" "$lock"
python3 - "$lock" "$W/pystore.idna.lock" <<'PY'
import re, sys
src, dest = sys.argv[1:]
text = open(src).read()
pattern = re.compile(r'(name = "idna"\nversion = )"3\.20"\nwheel = "idna-3\.20-py3-none-any\.whl"\nsize = \d+\nsha256 = "[0-9a-f]{64}"\n')
new, count = pattern.subn(r'\1"3.10"\nwheel = "idna-3.10-py3-none-any.whl"\nsize = 70442\n'
                          r'sha256 = "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"\n', text)
assert count == 2, count
open(dest, "w").write(new)
PY
python3 tests/acceptance/fetch_wheels.py "$W/pystore.idna.lock" "$out/wheels" >&2
recipe_with "$W/recipe-idna" "$W/pystore.idna.lock"
# The peer installs exactly the lock's Linux pins, without resolving.
python3 - "$lock" >"$W/pins.txt" <<'PY'
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
target = next(t for t in lock["targets"] if t["name"] == "linux-x86_64")
for p in target["packages"]:
    print(f'{p["name"]}=={p["version"]}')
PY
modules=$(python3 -c 'import tomllib,sys; print(" ".join(tomllib.load(open(sys.argv[1],"rb"))["validate"]))' tests/acceptance/samai311/recipe.toml)

ps() { "$PYSTORE" --quiet --store "$1" --find-links "$out/wheels" realise "$2" --target linux-x86_64 >/dev/null; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

peer_cold() { # DIR
    retire "$1"; mkdir -p "$1"
    sync
    local t0; t0=$(now)
    tar -xzf "$archive" -C "$1"
    local py=$1/python/bin/python3.11
    UV_CACHE_DIR=$1/uv-cache "$UV" pip install --quiet --offline --no-deps --no-index \
        --find-links "$out/wheels" --compile-bytecode --python "$py" \
        --target "$1/python/lib/python3.11/site-packages" -r "$W/pins.txt"
    "$py" -I -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" $modules
    (cd "$1/python" && zip -X -r -q "$1/bundle.zip" .)
    secs "$t0" "$(now)"
}
peer_noop() { # DIR (after peer_cold)
    sync
    local t0; t0=$(now)
    UV_CACHE_DIR=$1/uv-cache "$UV" pip install --quiet --offline --no-deps --no-index \
        --find-links "$out/wheels" --python "$1/python/bin/python3.11" \
        --target "$1/python/lib/python3.11/site-packages" -r "$W/pins.txt"
    secs "$t0" "$(now)"
}
peer_fresh() { # DIR (after peer_cold): the same install into a new target, from the warm cache
    local target; target=$(mktemp -d "$W/fresh-target.XXXXXX")
    sync
    local t0; t0=$(now)
    UV_CACHE_DIR=$1/uv-cache "$UV" pip install --quiet --offline --no-deps --no-index \
        --find-links "$out/wheels" --python "$1/python/bin/python3.11" --target "$target" -r "$W/pins.txt"
    secs "$t0" "$(now)"
    retire "$target"
}
# Each timed command follows an untimed sync, so that no side pays for what the other left dirty.
timed() { sync; local t0; t0=$(now); "$@"; secs "$t0" "$(now)"; }

cold=() peer=() noop=() peernoop=() peerfresh=() changed=()
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS ..." >&2
    peer+=("$(peer_cold "$W/peer")")
    retire "$W/store"
    cold+=("$(timed ps "$W/store" "$W/recipe")")
    noop+=("$(timed ps "$W/store" "$W/recipe")")   # writes the intact stamps, as any 2nd run
    noop+=("$(timed ps "$W/store" "$W/recipe")")
    peernoop+=("$(peer_noop "$W/peer")")
    peerfresh+=("$(peer_fresh "$W/peer")")
    changed+=("$(timed ps "$W/store" "$W/recipe-idna")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
c=$(median "${cold[@]}") p=$(median "${peer[@]}") n=$(median "${noop[@]:1}") pn=$(median "${peernoop[@]}") pf=$(median "${peerfresh[@]}") x=$(median "${changed[@]}")
# Importing from the unzipped bundle, read-only (-B: no pyc may be written, as in Program Files
# or /opt), with its pycs and from the same recipe with `bytecode = false`.
cp -r "$W/recipe" "$W/recipe-nopyc"
sed -i 's/^validate = /bytecode = false\nvalidate = /' "$W/recipe-nopyc/recipe.toml"
unzip_bundle() { # RECIPE DIR
    local zip
    zip=$("$PYSTORE" --quiet --json --store "$W/store" --find-links "$out/wheels" realise "$1" \
        --target linux-x86_64 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["zip"])')
    nuke "$2"; mkdir -p "$2"; (cd "$2" && unzip -q "$zip")
}
unzip_bundle "$W/recipe" "$W/with"
unzip_bundle "$W/recipe-nopyc" "$W/without"
# Each whole process, and until the modules are imported (os._exit then: the interpreter's exit,
# 0.5 s of freeing what openai and anthropic made, is not starting the application).
import_time() { timed env -i "$1/bin/python3.11" -I -B -c "import openai, anthropic${2:-}"; }
with=() without=() with_ready=() without_ready=()
for run in $(seq $((RUNS * 2 + 1))); do
    with+=("$(import_time "$W/with")")
    without+=("$(import_time "$W/without")")
    with_ready+=("$(import_time "$W/with" "; import os; os._exit(0)")")
    without_ready+=("$(import_time "$W/without" "; import os; os._exit(0)")")
done
# The floors under two goals, from the same unzipped bundles: what importing spends executing the
# modules' bodies (no bytecode takes that away), and the longest single import the validation
# runs, as it runs it (the collector frozen before exit; each validated module is imported by
# an interpreter of its own, so a realise that makes a new bundle cannot end before that one
# import does).
split() { env -i "$1/bin/python3.11" -I -B "$REPO/bench/import_split.py" openai anthropic; }
split_with=() split_without=()
for run in $(seq "$RUNS"); do
    split_with+=("$(split "$W/with")")
    split_without+=("$(split "$W/without")")
done
field_median() { # FIELD JSON...
    local field=$1; shift
    median $(for json in "$@"; do python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$json" "$field"; done)
}
longest_module="" longest=0
for module in $modules; do
    t=$(median $(for run in $(seq "$RUNS"); do timed env -i "$W/with/bin/python3.11" -I -B -c "import $module; import gc; gc.freeze()"; done))
    if [ "$(echo "$t > $longest" | bc -l)" = 1 ]; then longest=$t longest_module=$module; fi
done
# A timings report of one more cold realise, to see where the time went.
retire "$W/store"
"$PYSTORE" --quiet --store "$W/store" --find-links "$out/wheels" realise "$W/recipe" --target linux-x86_64 \
    --timings="$W/timings" >/dev/null
echo
echo "### pystore realise on real wheels ($(wc -l <"$W/pins.txt") packages), median of $RUNS, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "interpreter archive: $(basename "$(dirname "$archive")")/$(basename "$archive") ($(tar -tzf "$archive" | grep -c '\.pyc$') pycs)"
echo
echo "| operation | pystore | peer | ratio | goal |"
echo "|---|---|---|---|---|"
printf '| cold realise | %.2f s | unpack + uv --compile-bytecode (cold cache) + import + zip: %.2f s | %.2f | <= 0.5 |\n' "$c" "$p" "$(echo "$c / $p" | bc -l)"
printf '| no-op realise | %.3f s | uv pip install --target, warm: %.3f s | %.2f | <= 0.2 |\n' "$n" "$pn" "$(echo "$n / $pn" | bc -l)"
printf '| no-op realise | %.3f s | the same into a new target, from the warm cache: %.3f s | %.2f | (for reference) |\n' "$n" "$pf" "$(echo "$n / $pf" | bc -l)"
printf '| one package changed (idna) | %.2f s | pystore cold: %.2f s | %.2f | <= 0.25 |\n' "$x" "$c" "$(echo "$x / $c" | bc -l)"
iw=$(median "${with[@]}") io=$(median "${without[@]}")
printf '| import openai, anthropic from the unzipped bundle (-B) | with pycs: %.2f s | without (bytecode = false): %.2f s | %.2f | <= 0.5 |\n' "$iw" "$io" "$(echo "$iw / $io" | bc -l)"
rw=$(median "${with_ready[@]}") ro=$(median "${without_ready[@]}")
printf '| the same, until imported (exit not counted) | with pycs: %.2f s | without: %.2f s | %.2f | <= 0.5 |\n' "$rw" "$ro" "$(echo "$rw / $ro" | bc -l)"
echo
# Every run, not only the medians: single runs here vary by tens of percent.
runs() { printf ' %.3f' "$@"; }
ew=$(field_median execute "${split_with[@]}") gw=$(field_median get_code "${split_with[@]}")
tw=$(field_median total "${split_with[@]}") eo=$(field_median execute "${split_without[@]}")
go=$(field_median get_code "${split_without[@]}") to=$(field_median total "${split_without[@]}")
echo "floors (median of $RUNS, timed inside the interpreter, $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["modules"])' "${split_with[0]}") modules):"
printf -- '- import with pycs: %.2f s = executing the modules %.2f s + getting their code (find, read and check the pyc, unmarshal) %.2f s + finding them; without: %.2f s, getting the code (compiling) %.2f s, executing %.2f s.\n' "$tw" "$ew" "$gw" "$to" "$go" "$eo"
printf -- '  With code that cost nothing to get, the import ratio would still be %.2f.\n' "$(echo "($tw - $gw) / $to" | bc -l)"
printf -- '- one changed: the longest validated import alone, as the validation runs it (%s, from the unzipped bundle, with pycs) takes %.2f s = %.2f of cold.\n' "$longest_module" "$longest" "$(echo "$longest / $c" | bc -l)"
echo
echo "each run (s): cold$(runs "${cold[@]}"); peer$(runs "${peer[@]}"); no-op$(runs "${noop[@]:1}");" \
    "uv no-op$(runs "${peernoop[@]}"); uv into a new target$(runs "${peerfresh[@]}"); one changed$(runs "${changed[@]}");" \
    "import with$(runs "${with[@]}"), without$(runs "${without[@]}");" \
    "until imported with$(runs "${with_ready[@]}"), without$(runs "${without_ready[@]}")"
echo
echo "cold realise by step (seconds summed over entries; --timings):"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for step, s in sorted(d["steps"].items(), key=lambda kv: -kv[1]["seconds"]):
    print("  %-10s %6.2f s  (%d entries)" % (step, s["seconds"], s["done"]))
' "$W/timings.json"
