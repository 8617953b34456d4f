#!/usr/bin/env bash
# mltrust holds itself to its own gate: `mltrust check` on exactly what this repository ships
# (the files git tracks, as a fresh clone has them: no .venv, no caches), with the repository's
# own profile (mltrust-policy.yaml) and waivers (mltrust-waivers.yaml).
# Exit status is mltrust check's: 0 pass, 1 policy failure, 2 error.
#
#   bash scripts/self_check.sh [--format json --output REPORT.json]
#
# The advisory database is imported from $MLTRUST_SELF_ADVISORIES (default: the PyPA snapshot in
# ../shared/data). That snapshot is fixed and offline, so its age is not held against it
# (--db-max-age 0); a release pipeline should import a current database instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
BIN="$(cd "${BIN:-.venv/bin}" && pwd)"
SRC="${MLTRUST_SELF_ADVISORIES:-../shared/data/pypa-advisory-db}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/tree"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work/tree"
"$BIN/mltrust" db import "$SRC" --db "$work/advisories.db" >/dev/null
cd "$work/tree"
"$BIN/mltrust" check . --profile mltrust-policy.yaml --waivers mltrust-waivers.yaml \
    --db "$work/advisories.db" --db-max-age 0 --no-store "$@"
