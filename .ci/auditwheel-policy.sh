#!/usr/bin/env bash
# The vendored manylinux/musllinux policies (src/bundle/data/auditwheel/) must be exactly the
# files of the auditwheel release named in VERSION beside them: fetch that release's wheel with
# pip (which knows its index) and compare byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
data=src/bundle/data/auditwheel
version=$(tr -d '[:space:]' <"$data/VERSION")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$work" "auditwheel==$version"
wheel=$(ls "$work"/auditwheel-"$version"-*.whl)
status=0
for name in manylinux-policy.json musllinux-policy.json; do
    if python3 - "$wheel" "auditwheel/policy/$name" "$data/$name" <<'PY'
import sys, zipfile
wheel, member, vendored = sys.argv[1:]
sys.exit(0 if zipfile.ZipFile(wheel).read(member) == open(vendored, "rb").read() else 1)
PY
    then
        echo "auditwheel policy: $data/$name is auditwheel $version's"
    else
        echo "auditwheel policy: $data/$name differs from auditwheel $version's $name;" \
            "copy it from the wheel (pip download auditwheel==$version --no-deps) or fix VERSION" >&2
        status=1
    fi
done
exit $status
