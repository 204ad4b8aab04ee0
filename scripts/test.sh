#!/bin/sh
# Install everything the test suite needs (DNS servers included), run the
# static checks (ruff lint, ruff format, mypy; configured in pyproject.toml)
# and then the tests.  Works on a fresh Debian machine as root; this is what
# .ci/run calls.  A failed check does not stop the tests (their result is
# worth having too), but it makes the script exit non-zero.
# The Debian packages are listed in scripts/debian-packages; set
# SECDNS_DEBIAN_PACKAGES_INSTALLED=1 when they are already installed.
# Arguments go to pytest (scripts/test.sh tests/test_store.py -x).
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
failed=""
check() {
    echo "scripts/test.sh: $*" >&2
    "$@" || failed="$failed
    $*"
}
check .venv/bin/ruff check secdns tests bench scripts
check .venv/bin/ruff format --check secdns tests bench scripts
check .venv/bin/mypy secdns
status=0
SECDNS_REQUIRE_SERVERS=1 .venv/bin/python -m pytest -q "$@" || status=$?
if [ -n "$failed" ]; then
    echo "scripts/test.sh: these checks failed:$failed" >&2
    [ "$status" != 0 ] || status=1
fi
exit "$status"
