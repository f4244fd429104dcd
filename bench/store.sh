#!/usr/bin/env bash
# Benchmark: pystore's store operations beside a peer tool on the same data, in the same run.
# Not a test: it never fails on slowness, it only reports. Usage, from the repo root:
#   bash bench/store.sh                # 10,000 files (~334 MB)
#   FILES=500 bash bench/store.sh      # quick
#   BENCH_DIR=/some/dir KEEP=1 bash bench/store.sh   # keep the data afterwards
#   PYSTORE_BEFORE=/path/to/old/pystore bash bench/store.sh   # also time an older build's add
# Each number is the median of RUNS (default 3) wall-clock runs. Caches cannot be dropped, so
# both sides read their input from the page cache.
set -euo pipefail

FILES=${FILES:-10000}
RUNS=${RUNS:-3}

cargo build --release --quiet
PYSTORE=$PWD/target/release/pystore

# Our own mktemp dir is removed at the end too; a given BENCH_DIR only loses our subdir.
OWN_DIR=0
if [ -z "${BENCH_DIR:-}" ]; then BENCH_DIR=$(mktemp -d) OWN_DIR=1; fi
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/pystore-bench.$$
mkdir "$W"

# Store entries are read-only, so plain rm -rf can fail (as non-root) without chmod first.
nuke() { if [ -e "$1" ]; then chmod -R u+w "$1" && rm -rf "$1"; fi; }
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; return; fi
    nuke "$W"
    if [ "$OWN_DIR" = 1 ]; then rmdir "$BENCH_DIR"; fi
}
trap cleanup EXIT

# b3sum is the natural peer for verify (pystore hashes with blake3); sha256sum is always there.
if ! command -v b3sum >/dev/null; then
    echo "b3sum not found; trying: cargo install b3sum --locked" >&2
    cargo install b3sum --locked --quiet || echo "b3sum install failed; sha256sum only" >&2
    export PATH=$HOME/.cargo/bin:$PATH
fi
HAVE_B3=0
if command -v b3sum >/dev/null; then HAVE_B3=1; fi

# --- Data (deterministic: fixed seed) -------------------------------------------------------
# tree/:  FILES files, 100 per dir, dirs nested two deep, sizes 1..64 KiB, every 97th executable.
# small/: FILES files of 64..1024 bytes with distinct contents (each becomes its own gc entry).
echo "generating $FILES files in $W ..." >&2
python3 - "$W" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
for kind, lo, hi in (("tree", 1024, 65536), ("small", 64, 1024)):
    for i in range(n):
        d = os.path.join(root, kind, f"g{i // 1000:02}", f"d{i // 100 % 10}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"f{i:05}")
        with open(p, "wb") as f:
            f.write(random.randbytes(random.randint(lo, hi)))
        if kind == "tree" and i % 97 == 0:
            os.chmod(p, 0o755)
EOF
TREE=$W/tree
SMALL=$W/small
BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
MB=$(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1e6}')

# --- Timing helpers -------------------------------------------------------------------------
now() { date +%s.%N; }
# time_cmd VAR CMD...: append the wall-clock seconds of CMD to the array VAR.
time_cmd() {
    local -n samples=$1
    shift
    local t0 t1
    # Untimed: a side that syncs (pystore) must not also pay for what the one before left dirty.
    sync
    t0=$(now)
    "$@"
    t1=$(now)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN {printf "%.0f", n / t}'; }

pst() { "$PYSTORE" --store "$1" -q "${@:2}"; }
# Entries from a whole directory of files: relative paths and a 1 MB xargs buffer keep it to
# one pystore invocation for 10,000 files (xargs splits only if the list is larger).
add_each() { (cd "$SMALL" && find . -type f -print0 | xargs -0 -s 1000000 "${2:-$PYSTORE}" --store "$1" -q add >/dev/null); }
# PYSTORE_BEFORE=/path/to/old/pystore: also time an older build adding the same entries.
BEFORE=${PYSTORE_BEFORE:-}
hash_all() { find "$TREE" -type f -print0 | xargs -0 "$1" >/dev/null; }

# --- a. add a tree vs cp -r (fresh destination each run) ------------------------------------
echo "a. add tree vs cp -r" >&2
S=$W/store-tree
add_t=() cp_t=() cps_t=()
for _ in $(seq "$RUNS"); do
    nuke "$S"
    time_cmd add_t pst "$S" add "$TREE" >/dev/null
    nuke "$W/cp"
    time_cmd cp_t cp -r "$TREE" "$W/cp"
    # pystore makes the entry durable (one syncfs); this peer does the same to be comparable.
    nuke "$W/cp"
    time_cmd cps_t sh -c 'cp -r "$1" "$2" && sync -f "$2"' sh "$TREE" "$W/cp"
done
nuke "$W/cp"
ENTRY=$(pst "$S" add "$TREE") # already there: prints the entry path, keeps the last run's store

# --- b. verify vs b3sum / sha256sum over the same bytes -------------------------------------
echo "b. verify vs b3sum, sha256sum" >&2
ver_t=() b3_t=() sha_t=()
for _ in $(seq "$RUNS"); do
    time_cmd ver_t pst "$S" verify "$ENTRY"
    if [ "$HAVE_B3" = 1 ]; then time_cmd b3_t hash_all b3sum; fi
    time_cmd sha_t hash_all sha256sum
done

# --- c. FILES small entries: add vs cp -r, gc (no roots: deletes all) vs rm -rf ------------
echo "c. add $FILES entries vs cp -r; gc vs rm -rf" >&2
G=$W/store-gc
addn_t=() cpn_t=() gc_t=() rm_t=() addb_t=()
for _ in $(seq "$RUNS"); do
    nuke "$G"
    time_cmd addn_t add_each "$G"
    time_cmd gc_t pst "$G" gc >/dev/null
    if [ -n "$BEFORE" ]; then
        nuke "$W/store-before"
        time_cmd addb_t add_each "$W/store-before" "$BEFORE"
    fi
    time_cmd cpn_t cp -r "$SMALL" "$W/small-copy"
    time_cmd rm_t rm -rf "$W/small-copy"
done
# Sanity: the gc above really had FILES entries to delete (not, say, a batch silently merged).
add_each "$G"
n_entries=$(find "$G/entries" -mindepth 1 -maxdepth 1 | wc -l)
[ "$n_entries" = "$FILES" ] || { echo "expected $FILES entries, got $n_entries" >&2; exit 1; }

# --- Report ---------------------------------------------------------------------------------
# row OP PYSTORE_SECS PEER_NAME PEER_SECS UNIT: UNIT "files" shows files/s, "MB" shows MB/s.
row() {
    local op=$1 p=$2 peer=$3 q=$4 unit=$5 pr qr
    if [ "$unit" = MB ]; then
        pr="$(rate "$MB" "$p") MB/s" qr="$(rate "$MB" "$q") MB/s"
    else
        pr="$(rate "$FILES" "$p") files/s" qr="$(rate "$FILES" "$q") files/s"
    fi
    printf '| %s | %ss (%s) | %s: %ss (%s) | %s |\n' "$op" "$p" "$pr" "$peer" "$q" "$qr" "$(div "$p" "$q")"
}
echo
echo "### pystore store benchmark: $FILES files, $MB MB (MB = 10^6 bytes), median of $RUNS"
echo
echo "| operation | pystore | peer | ratio = pystore time / peer time (>1: pystore slower) |"
echo "|---|---|---|---|"
row "add tree ($FILES files)" "$(median "${add_t[@]}")" "cp -r" "$(median "${cp_t[@]}")" files
row "add tree ($FILES files)" "$(median "${add_t[@]}")" "cp -r + sync -f" "$(median "${cps_t[@]}")" files
if [ "$HAVE_B3" = 1 ]; then
    row "verify tree ($MB MB)" "$(median "${ver_t[@]}")" "b3sum" "$(median "${b3_t[@]}")" MB
fi
row "verify tree ($MB MB)" "$(median "${ver_t[@]}")" "sha256sum" "$(median "${sha_t[@]}")" MB
row "add $FILES files as $FILES entries" "$(median "${addn_t[@]}")" "cp -r" "$(median "${cpn_t[@]}")" files
row "gc $FILES entries (no roots)" "$(median "${gc_t[@]}")" "rm -rf" "$(median "${rm_t[@]}")" files
if [ -n "$BEFORE" ]; then
    row "add $FILES files as $FILES entries" "$(median "${addn_t[@]}")" "the same with PYSTORE_BEFORE" "$(median "${addb_t[@]}")" files
fi
echo
echo "- $("$PYSTORE" --version) (release), -j default = nproc = $(nproc)"
if [ "$HAVE_B3" = 1 ]; then echo "- $(b3sum --version)"; else echo "- b3sum: not available"; fi
echo "- $(sha256sum --version | head -1); $(cp --version | head -1)"
echo "- bench dir file system: $(stat -f -c %T "$W"); data in page cache for both sides"
echo "- peers run one process per xargs batch, single-threaded per file; pystore uses -j $(nproc)"
