#!/bin/sh
# Install everything the test suite needs (DNS servers included) and run it.
# Works on a fresh Debian machine as root; this is what .ci/run calls.
# The Debian packages are listed in scripts/debian-packages; set
# SECDNS_DEBIAN_PACKAGES_INSTALLED=1 when they are already installed.
set -eu
cd "$(dirname "$0")/.."
if [ "${SECDNS_DEBIAN_PACKAGES_INSTALLED:-}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2046
    apt-get install -y -qq --no-install-recommends $(cat scripts/debian-packages) >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
SECDNS_REQUIRE_SERVERS=1 .venv/bin/python -m pytest -q "$@"
