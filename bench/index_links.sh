#!/usr/bin/env bash
# Benchmark: `pystore lock` against one index page with many links (issue 15: superlinear in the
# number of links). Not a test: it never fails on slowness, it only reports. From the repo root:
#   bash bench/index_links.sh                        # 100,000 and 200,000 links
#   LINKS="10000 20000" bash bench/index_links.sh
#   PYSTORE=target/debug/pystore PYSTORE_BEFORE=/path/to/old/pystore bash bench/index_links.sh
# The page (HTML, PEP 503) lists LINKS versions of project `demo`, each with a sha256 and a PEP
# 658 metadata file; only the newest is a real wheel. Python's http.server serves it on
# loopback. Each number is the median of RUNS (default 1) wall-clock runs.
set -euo pipefail

LINKS=${LINKS:-"100000 200000"}
RUNS=${RUNS:-1}
if [ -z "${PYSTORE:-}" ]; then
    cargo build --release --quiet
    PYSTORE=$PWD/target/release/pystore
fi

W=$(mktemp -d)
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
    chmod -R u+w "$W" && rm -rf "$W"
}
trap cleanup EXIT

# page N: $W/idx-N/simple/demo/index.html and the newest version's wheel and metadata.
make_index() {
    python3 - "$W/idx-$1" "$1" <<'EOF'
import hashlib, os, sys, zipfile
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/simple/demo")
os.makedirs(f"{root}/files")
top = f"demo-1.{n - 1}-py3-none-any.whl"
meta = f"Metadata-Version: 2.1\nName: demo\nVersion: 1.{n - 1}\n".encode()
info = f"demo-1.{n - 1}.dist-info"
with zipfile.ZipFile(f"{root}/files/{top}", "w") as z:
    z.writestr("demo/__init__.py", "")
    z.writestr(f"{info}/METADATA", meta)
    z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr(f"{info}/RECORD", "")
with open(f"{root}/files/{top}.metadata", "wb") as f:
    f.write(meta)
top_sha = hashlib.sha256(open(f"{root}/files/{top}", "rb").read()).hexdigest()
meta_sha = hashlib.sha256(meta).hexdigest()
with open(f"{root}/simple/demo/index.html", "w") as page:
    page.write("<!DOCTYPE html><html><body>\n")
    for i in range(n):
        name = f"demo-1.{i}-py3-none-any.whl"
        sha = top_sha if i == n - 1 else hashlib.sha256(name.encode()).hexdigest()
        page.write(f'<a href="../../files/{name}#sha256={sha}" data-core-metadata="sha256={meta_sha}">{name}</a>\n')
    page.write("</body></html>\n")
EOF
}

median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

mkdir -p "$W/recipe"
cat >"$W/recipe/recipe.toml" <<'EOF'
name = "bench"
version = "1.0.0"
python = "3.11.2"

[[targets]]
name = "t"
platform = "x86_64-unknown-linux-gnu"
EOF
echo demo >"$W/recipe/requirements.txt"

echo "| links | page size | pystore lock | previous build |"
echo "|---|---|---|---|"
for n in $LINKS; do
    make_index "$n"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 -m http.server --bind 127.0.0.1 --directory "$W/idx-$n" "$port" >/dev/null 2>&1 &
    SERVER=$!
    sleep 1
    time_of() {
        local bin=$1 times=()
        for _ in $(seq "$RUNS"); do
            rm -rf "$W/store" "$W/recipe/pystore.lock"
            # Wall-clock and CPU (user + sys) seconds: on a shared machine the CPU time shows the
            # growth with fewer effects of the load.
            /usr/bin/time -f "%e %U %S" -o "$W/time" \
                "$bin" --store "$W/store" -q --index-url "http://127.0.0.1:$port/simple/" lock "$W/recipe" >/dev/null
            times+=("$(awk '{printf "%.2f s (CPU %.2f s)", $1, $2 + $3}' "$W/time")")
        done
        printf '%s\n' "${times[@]}" | median
    }
    after=$(time_of "$PYSTORE")
    before=-
    if [ -n "${PYSTORE_BEFORE:-}" ]; then before="$(time_of "$PYSTORE_BEFORE")"; fi
    size=$(du -h "$W/idx-$n/simple/demo/index.html" | cut -f1)
    echo "| $n | $size | $after | $before |"
    kill "$SERVER"
    SERVER=
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
