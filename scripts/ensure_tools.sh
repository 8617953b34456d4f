#!/usr/bin/env bash
# Install the command-line tools the test suite runs that do not come from PyPI (idempotent):
#   promtool -- from Debian's `prometheus` package (tests/test_observability.py checks and
#               unit-tests deploy/prometheus/mltrust-rules.yml with it).
# Used by `make unit` before pytest. Needs root (or sudo) and the Debian package registry the
# first time; afterwards it only checks. When a tool cannot be installed it says so and leaves
# the tests that need it to fail (under CI=true they fail rather than skip).
set -uo pipefail

missing=()
command -v promtool >/dev/null || missing+=(prometheus)

[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then as_root=(sudo -n); else
        echo "ensure_tools: ${missing[*]} missing and not root: install them by hand" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure_tools: no apt-get here: install ${missing[*]} (promtool) by hand" >&2
    exit 0
fi
echo "ensure_tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { "${as_root[@]}" apt-get update -qq && \
         "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || echo "ensure_tools: could not install ${missing[*]}" >&2
command -v promtool >/dev/null || echo "ensure_tools: promtool is still missing" >&2
exit 0
