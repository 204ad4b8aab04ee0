#!/bin/sh
# Install everything the test suite needs (DNS servers included) and run it.
# Works on a fresh Debian machine as root; this is what .ci/run calls.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    python3 python3-venv python3-pip \
    bind9 bind9-utils bind9-dnsutils knot knot-dnsutils nsd ldnsutils \
    groff-base man-db >/dev/null
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
SECDNS_REQUIRE_SERVERS=1 .venv/bin/python -m pytest -q "$@"
