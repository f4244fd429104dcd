#!/usr/bin/env bash
# Reproducibility harness: realises one small offline recipe under varied conditions and asserts
# that every run gives the same ZIP, provenance and SBOM bytes (sha256), then that
# `pystore realise --check --rounds 2` rebuilds every derived entry identically.
#
#   bash tests/repro/harness.sh                           # exit 0 when everything is identical
#   bash tests/repro/harness.sh --inject-nondeterminism   # must exit 1 (proves the harness can fail)
#
# Conditions, each in a fresh store and compared with the baseline: another store root and build
# path (with spaces; the recipe copied elsewhere; another cwd), TZ, umask, locale, HOME/XDG dirs,
# a contaminated Python and pip environment (PYTHONPATH with a shadowing package and
# sitecustomize, PYTHONHOME, a user site with a .pth, PYTHONSTARTUP, pip config), -j 1 against
# -j N, and, when disorderfs and FUSE are available, store and inputs on file systems that list
# directories in shuffled and in reversed order. On a difference it prints what differs
# (diffoscope when installed, else `pystore diff --files`) and exits 1.
#
# Inputs come from `cargo run --example repro_fixture` (wheels built in code, an interpreter
# archive from Debian's python3.11): no network. PYSTORE=/path/to/pystore picks the binary
# (default: target/debug/pystore, built here); KEEP=1 keeps the work directory.
set -euo pipefail

INJECT=0
case "${1:-}" in
    "") ;;
    --inject-nondeterminism) INJECT=1 ;;
    *) echo "usage: $0 [--inject-nondeterminism]" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"
if [ -z "${PYSTORE:-}" ]; then
    cargo build --locked --quiet
    PYSTORE=$REPO/target/debug/pystore
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/pystore-repro.XXXXXX")
MOUNTS=()
nuke() { if [ -e "$1" ]; then chmod -R u+w "$1" 2>/dev/null; rm -rf "$1"; fi; }
cleanup() {
    local m
    for m in "${MOUNTS[@]}"; do fusermount -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; else nuke "$W"; fi
}
trap cleanup EXIT

echo "harness: writing the fixture into $W/fixture" >&2
RECIPE=$(cargo run --locked --quiet --example repro_fixture -- "$W/fixture")
WHEELS=$W/fixture/wheels
NPROC=$(nproc)

# A contaminated Python environment: none of it may reach a build.
EVIL=$W/evil
mkdir -p "$EVIL/path/greet_lib" "$EVIL/home/lib/python3.11" "$EVIL/userbase/lib/python3.11/site-packages"
echo "raise SystemExit('sitecustomize from PYTHONPATH ran')" >"$EVIL/path/sitecustomize.py"
echo "raise SystemExit('usercustomize from PYTHONPATH ran')" >"$EVIL/path/usercustomize.py"
echo "def hello(who): return 'shadowed ' + who" >"$EVIL/path/greet_lib/__init__.py"
echo "import sys; sys.exit('user site .pth ran')" >"$EVIL/userbase/lib/python3.11/site-packages/evil.pth"
echo "raise SystemExit('PYTHONSTARTUP ran')" >"$EVIL/startup.py"
printf '[global]\nindex-url = http://127.0.0.1:9/simple/\ntarget = %s/pip-target\n' "$EVIL" >"$EVIL/pip.conf"

FAILPOINT=()
if [ "$INJECT" = 1 ]; then
    echo "harness: injecting nondeterminism (PYSTORE_FAILPOINT=nondeterministic-output)" >&2
    FAILPOINT=(PYSTORE_FAILPOINT=nondeterministic-output)
fi

# realise NAME STORE RECIPE WHEELS CWD UMASK JOBS [VAR=VALUE...]: one realise in a scrubbed
# environment (plus the given variables); records the three sha256s in $W/results/NAME.
mkdir -p "$W/results" "$W/home"
realise() {
    local name=$1 store=$2 recipe=$3 wheels=$4 cwd=$5 mask=$6 jobs=$7
    shift 7
    mkdir -p "$cwd"
    local json=$W/results/$name.json
    if ! env -i PATH=/usr/bin:/bin HOME="$W/home" LANG=C.UTF-8 TZ=UTC "${FAILPOINT[@]}" "$@" \
        sh -c 'umask "$1"; cd "$2" && shift 2 && exec "$@"' sh "$mask" "$cwd" \
        "$PYSTORE" --store "$store" -q --json -j "$jobs" --find-links "$wheels" realise "$recipe" \
        >"$json" 2>"$W/results/$name.err"; then
        echo "FAILED to realise under condition $name:" >&2
        cat "$W/results/$name.err" >&2
        return 1
    fi
    python3 - "$json" >"$W/results/$name" <<'PY'
import hashlib, json, sys
target = json.load(open(sys.argv[1]))[0]
for key in ("zip", "provenance", "sbom"):
    with open(target[key], "rb") as f:
        print(key, hashlib.sha256(f.read()).hexdigest(), target[key])
PY
}

CONDITIONS=()
run() { # NAME ARGS...: realise, and remember NAME for the comparison
    echo "harness: $1" >&2
    realise "$@"
    CONDITIONS+=("$1")
}

run baseline "$W/store-base" "$RECIPE" "$WHEELS" "$W" 022 "$NPROC"
OTHER="$W/other place/deeper"
mkdir -p "$OTHER"
cp -a "$W/fixture" "$OTHER/fixture copy"
run store-root-and-build-path "$OTHER/store root" "$OTHER/fixture copy/recipes/demo" \
    "$OTHER/fixture copy/wheels" / 022 "$NPROC"
run timezone "$W/store-tz" "$RECIPE" "$WHEELS" "$W" 022 "$NPROC" TZ=Pacific/Kiritimati
if [ "$INJECT" = 0 ]; then
    run umask-077 "$W/store-umask" "$RECIPE" "$WHEELS" "$W" 077 "$NPROC"
    run umask-002 "$W/store-umask2" "$RECIPE" "$WHEELS" "$W" 002 "$NPROC"
    run locale "$W/store-locale" "$RECIPE" "$WHEELS" "$W" 022 "$NPROC" \
        LANG=tr_TR.UTF-8 LC_ALL=tr_TR.UTF-8 LC_COLLATE=tr_TR.UTF-8
    run home-and-xdg "$W/store-home" "$RECIPE" "$WHEELS" "$W" 022 "$NPROC" \
        HOME="$W/elsewhere-home" XDG_DATA_HOME="$W/xdg-data" XDG_CACHE_HOME="$W/xdg-cache" \
        XDG_CONFIG_HOME="$W/xdg-config" USER=someone-else
    run python-environment "$W/store-python" "$RECIPE" "$WHEELS" "$W" 022 "$NPROC" \
        PYTHONPATH="$EVIL/path" PYTHONHOME="$EVIL/home" PYTHONUSERBASE="$EVIL/userbase" \
        PYTHONSTARTUP="$EVIL/startup.py" PYTHONHASHSEED=12345 PYTHONNOUSERSITE= \
        PIP_CONFIG_FILE="$EVIL/pip.conf" PIP_INDEX_URL=http://127.0.0.1:9/simple/ \
        PIP_TARGET="$EVIL/pip-target" VIRTUAL_ENV="$EVIL"
    run jobs-1 "$W/store-j1" "$RECIPE" "$WHEELS" "$W" 022 1

    # Directory listing order: only disorderfs (FUSE) can change it on a given file system.
    if command -v disorderfs >/dev/null && [ -e /dev/fuse ]; then
        for mode in shuffle reverse; do
            src=$W/dfs-$mode-src mnt=$W/dfs-$mode
            mkdir -p "$src" "$mnt"
            cp -a "$W/fixture" "$src/fixture"
            if disorderfs -q "--$mode-dirents=yes" "$src" "$mnt" 2>"$W/results/dfs-$mode.err"; then
                MOUNTS+=("$mnt")
                run "disorderfs-$mode-dirents" "$mnt/store" "$mnt/fixture/recipes/demo" \
                    "$mnt/fixture/wheels" "$W" 022 "$NPROC"
            else
                echo "harness: skipped disorderfs --$mode-dirents: $(cat "$W/results/dfs-$mode.err")" >&2
            fi
        done
    else
        echo "harness: skipped directory-order conditions: disorderfs or /dev/fuse is missing" \
            "(apt-get install disorderfs)" >&2
    fi
fi

# --- Compare -----------------------------------------------------------------------------------
FAILED=0
base=$W/results/baseline
for name in "${CONDITIONS[@]}"; do
    [ "$name" = baseline ] && continue
    result=$W/results/$name
    if cmp -s <(cut -d' ' -f1-2 "$base") <(cut -d' ' -f1-2 "$result"); then
        echo "same      $name"
        continue
    fi
    FAILED=1
    echo "DIFFERENT $name"
    while read -r key sha path; do
        read -r _ base_sha base_path < <(grep "^$key " "$base")
        if [ "$sha" != "$base_sha" ]; then
            echo "  $key: baseline $base_sha ($base_path)"
            echo "  $key: $name $sha ($path)"
        fi
    done <"$result"
    a=$(grep '^zip ' "$base" | cut -d' ' -f3-)
    b=$(grep '^zip ' "$result" | cut -d' ' -f3-)
    if command -v diffoscope >/dev/null; then
        echo "  diffoscope of the ZIPs (first 60 lines):"
        (diffoscope --no-progress --text - "$a" "$b" || true) | head -60 | sed 's/^/    /'
    else
        echo "  pystore diff --files of the ZIPs (diffoscope is not installed):"
        ("$PYSTORE" diff --files "$a" "$b" || true) | head -60 | sed 's/^/    /'
    fi
done

# --- --check: every derived entry rebuilt twice, from the baseline's registered inputs ---------
echo "harness: realise --check --rounds 2 on the baseline store" >&2
if env -i PATH=/usr/bin:/bin HOME="$W/home" "${FAILPOINT[@]}" "$PYSTORE" --store "$W/store-base" -q \
    --find-links "$WHEELS" realise "$RECIPE" --rounds 2 >"$W/results/check.out" 2>&1; then
    echo "same      realise --check --rounds 2: $(grep '^check:' "$W/results/check.out")"
else
    FAILED=1
    echo "DIFFERENT realise --check --rounds 2:"
    head -60 "$W/results/check.out" | sed 's/^/  /'
fi

if [ "$FAILED" = 0 ]; then
    echo "reproducible: ${#CONDITIONS[@]} conditions gave ZIP sha256 $(grep '^zip ' "$base" | cut -d' ' -f2)"
    exit 0
fi
echo "NOT reproducible: see the differences above"
exit 1
