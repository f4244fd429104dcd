#!/usr/bin/env bash
# Benchmark: pushing and pulling a closure through an OCI registry (Debian's docker-registry on a
# loopback port, filesystem storage) with pystore, beside ORAS's Python client (`oras` from PyPI,
# in a venv) and curl moving the same blobs. Not a test: it never fails on slowness, it only
# reports. Usage, from the repo root:
#   bash bench/oci.sh                        # the closure of DATA (default: /usr/lib/python3.11)
#   DATA="/usr/lib/python3.11 /usr/share/zoneinfo" RUNS=5 bash bench/oci.sh
#   BENCH_DIR=/some/dir KEEP=1 bash bench/oci.sh
#   PYSTORE=target/debug/pystore bash bench/oci.sh   # a given build (default: release, built)
# Each number is the median of RUNS (default 3) wall-clock runs; every run pushes to a new
# repository, so every blob is uploaded (blobs are not shared across repositories without a
# mount). pystore's push includes packing the entries (tar + zstd; the "pack only" row is the
# same push to a file:// directory); its pull includes verifying signatures, digests and content
# hashes, unpacking and registering. The peers move the already packed blobs and nothing else.
set -euo pipefail

RUNS=${RUNS:-3}
DATA=${DATA:-/usr/lib/python3.11}
REGISTRY=${REGISTRY:-/usr/bin/docker-registry}
[ -x "$REGISTRY" ] || { echo "$REGISTRY is missing: apt-get install docker-registry (.ci/oci.sh)" >&2; exit 1; }

# PYSTORE=/path/to/pystore uses that build instead of building the release one.
if [ -z "${PYSTORE:-}" ]; then
    cargo build --release --quiet
    PYSTORE=$PWD/target/release/pystore
fi

OWN_DIR=0
if [ -z "${BENCH_DIR:-}" ]; then BENCH_DIR=$(mktemp -d) OWN_DIR=1; fi
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
W=$BENCH_DIR/pystore-oci-bench.$$
mkdir "$W"
REG_PID=
nuke() { if [ -e "$1" ]; then chmod -R u+w "$1" && rm -rf "$1"; fi; }
cleanup() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; return; fi
    nuke "$W"
    if [ "$OWN_DIR" = 1 ]; then rmdir "$BENCH_DIR"; fi
}
trap cleanup EXIT

# ORAS's Python client, once, in a venv of its own.
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/pystore-bench/oras-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import oras.client' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check oras
fi
ORAS_VERSION=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("oras"))')

# --- The registry: loopback, temporary storage, nothing that reaches the network ------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $HOST
  secret: pystore-bench
EOF
"$REGISTRY" serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fs "http://$HOST/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$HOST/v2/" >/dev/null || { cat "$W/registry.log" >&2; exit 1; }

# --- The closure: store entries of DATA, packed once into a file:// remote for the peers ----
pst() { "$PYSTORE" --store "$1" -q "${@:2}"; }
S=$W/store
ENTRIES=()
# Copied with symlinks followed: an entry may not link outside itself (dangling links are skipped).
for dir in $DATA; do
    mkdir -p "$W/data"
    cp -rL "$dir" "$W/data/" 2>/dev/null || true
    ENTRIES+=("$(pst "$S" add "$W/data/$(basename "$dir")")")
done
pst "$S" push "${ENTRIES[@]}" --to "file://$W/packed" >/dev/null 2>&1
BLOBS=("$W"/packed/*)
BYTES=$(cat "${BLOBS[@]}" | wc -c)
MB=$(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1e6}')
echo "closure: ${#ENTRIES[@]} entries, ${#BLOBS[@]} blobs, $MB MB packed; registry $HOST" >&2

now() { date +%s.%N; }
time_cmd() {
    local -n samples=$1
    shift
    sync
    t0=$(now)
    "$@"
    t1=$(now)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

oras_push() {
    (cd "$W/packed" && "$VENV/bin/python" - "$HOST" "$1" ./* <<'EOF' >/dev/null
import sys, oras.client
host, repo, files = sys.argv[1], sys.argv[2], sys.argv[3:]
client = oras.client.OrasClient(hostname=host, insecure=True)
client.push(target=f"{host}/{repo}:v1", files=files, do_chunked=True, quiet=True)
EOF
    )
}
oras_pull() {
    "$VENV/bin/python" - "$HOST" "$1" "$2" <<'EOF' >/dev/null
import sys, oras.client
host, repo, out = sys.argv[1], sys.argv[2], sys.argv[3]
client = oras.client.OrasClient(hostname=host, insecure=True)
client.pull(target=f"{host}/{repo}:v1", outdir=out)
EOF
}
# curl: the same blobs, one monolithic upload each (POST, then PUT ?digest=), and GETs.
curl_push() {
    local repo=$1 f digest location
    for f in "${BLOBS[@]}"; do
        digest=sha256:$(sha256sum "$f" | cut -d' ' -f1)
        location=$(curl -fsS -o /dev/null -D - -X POST "http://$HOST/v2/$repo/blobs/uploads/" |
            tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
        case $location in http*) ;; *) location=http://$HOST$location ;; esac
        case $location in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
        curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
            --data-binary "@$f" "$location"
    done
}
curl_pull() {
    local repo=$1 out=$2 f digest
    mkdir -p "$out"
    for f in "${BLOBS[@]}"; do
        digest=sha256:$(sha256sum "$f" | cut -d' ' -f1)
        curl -fsS -o "$out/$(basename "$f")" "http://$HOST/v2/$repo/blobs/$digest"
    done
}

pack_t=() push_t=() pull_t=() oras_push_t=() oras_pull_t=() curl_push_t=() curl_pull_t=()
for run in $(seq "$RUNS"); do
    echo "run $run of $RUNS" >&2
    nuke "$W/packed-again"
    time_cmd pack_t pst "$S" push "${ENTRIES[@]}" --to "file://$W/packed-again" >/dev/null 2>&1
    time_cmd push_t pst "$S" push "${ENTRIES[@]}" --to "oci://$HOST/bench/pystore$run:v1" >/dev/null 2>&1
    nuke "$W/pulled"
    time_cmd pull_t pst "$W/pulled" pull --no-require-sigs "oci://$HOST/bench/pystore$run:v1" >/dev/null
    time_cmd oras_push_t oras_push "bench/oras$run"
    nuke "$W/oras-out"
    time_cmd oras_pull_t oras_pull "bench/oras$run" "$W/oras-out"
    time_cmd curl_push_t curl_push "bench/curl$run"
    nuke "$W/curl-out"
    time_cmd curl_pull_t curl_pull "bench/curl$run" "$W/curl-out"
done
# Sanity: the pulled store holds the same entries, and the peers got the same bytes.
for e in "${ENTRIES[@]}"; do [ -e "$W/pulled/entries/$(basename "$e")" ] || { echo "pull lost $e" >&2; exit 1; }; done
for f in "${BLOBS[@]}"; do
    cmp -s "$f" "$W/oras-out/$(basename "$f")" || { echo "oras pulled other bytes for $f" >&2; exit 1; }
    cmp -s "$f" "$W/curl-out/$(basename "$f")" || { echo "curl pulled other bytes for $f" >&2; exit 1; }
done

P_PACK=$(median "${pack_t[@]}") P_PUSH=$(median "${push_t[@]}") P_PULL=$(median "${pull_t[@]}")
O_PUSH=$(median "${oras_push_t[@]}") O_PULL=$(median "${oras_pull_t[@]}")
C_PUSH=$(median "${curl_push_t[@]}") C_PULL=$(median "${curl_pull_t[@]}")
P_UP=$(awk -v a="$P_PUSH" -v b="$P_PACK" 'BEGIN {printf "%.4f", a - b}')
echo
echo "OCI push/pull: ${#ENTRIES[@]} entries, ${#BLOBS[@]} blobs, $MB MB packed, docker-registry on loopback;" \
    "median of $RUNS; $PYSTORE; oras-py $ORAS_VERSION; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| operation | pystore (s) | oras-py (s) | curl (s) | pystore / oras | pystore / curl |"
echo "|---|---|---|---|---|---|"
echo "| push (pystore packs, then uploads) | $P_PUSH | $O_PUSH | $C_PUSH | $(div "$P_PUSH" "$O_PUSH") | $(div "$P_PUSH" "$C_PUSH") |"
echo "| push, packing taken out (push − pack only) | $P_UP | $O_PUSH | $C_PUSH | $(div "$P_UP" "$O_PUSH") | $(div "$P_UP" "$C_PUSH") |"
echo "| pull (pystore verifies, unpacks, registers) | $P_PULL | $O_PULL | $C_PULL | $(div "$P_PULL" "$O_PULL") | $(div "$P_PULL" "$C_PULL") |"
echo "| pack only (push to file://) | $P_PACK | | | | |"
