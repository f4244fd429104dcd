#!/usr/bin/env bash
# The `pystore lock --from-requirements` tests (tests/lock.rs) import what the real tools write:
# `uv pip compile --generate-hashes` and pip-tools' `pip-compile --generate-hashes`, run against
# the tests' loopback index. Without them those two tests skip, saying so; CI installs them so
# they run. Versions pinned to the ones the tests were written against.
set -euo pipefail
python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.9" "pip-tools==7.6.2"
uv --version
pip-compile --version
