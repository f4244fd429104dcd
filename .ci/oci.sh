#!/usr/bin/env bash
# The oci:// remote is tested against the real CNCF distribution server: Debian's
# docker-registry package (tests/remote/oci.rs starts it on a loopback port with its own config
# and storage) and htpasswd (apache2-utils) for its auth tests. The package's own service is not
# used; its default config is never read.
set -euo pipefail
if [ -x /usr/bin/docker-registry ] && command -v htpasswd >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Never start the packaged service (it would listen on :5000) where an init system exists.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null
/usr/bin/docker-registry --version
