# The two commands of the README: `make demo` (set up, run the main job) and `make test`.
# Each creates its own virtual environment in .venv; nothing needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt

.PHONY: demo test lint typecheck selfcheck unit bench sbom clean

$(BIN)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3  # pinned like the lock: the installer is a dependency too
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e '.[all,test]'
	$(BIN)/python -m pip check
	touch $@

demo: $(BIN)/.installed
	$(BIN)/mltrust demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# The services some tests talk to (PostgreSQL, Redis) are started first when not running, and
# the tools some tests run that PyPI does not have (promtool) installed (scripts/ensure_tools.sh).
# Tests run without network: in a fresh network namespace (only loopback) when the kernel
# allows it, and always behind the socket guard in tests/conftest.py. Tests marked `services`
# talk to the host's PostgreSQL/Redis on 127.0.0.1, which a fresh namespace cannot reach, so they
# run in a first pass behind the socket guard alone (exit 5, "no tests", is not a failure).
#
# Both passes run under coverage.py (line coverage of the library by the in-process tests; CLI
# runs in child processes are not traced); `coverage report` then fails the build below the
# floor in pyproject.toml ([tool.coverage.report] fail_under).
unit: $(BIN)/.installed
	bash scripts/ensure_tools.sh
	bash scripts/services.sh
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q -m services -p no:cacheprovider || test $$? -eq 5
	bash scripts/no-network.sh $(BIN)/python -m coverage run -m pytest -q -m "not services"
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report --format=total

# mltrust holds itself to its own gate: `mltrust check` on the committed tree with the
# repository's profile and waivers (scripts/self_check.sh); a policy failure fails the build.
selfcheck: $(BIN)/.installed
	bash scripts/self_check.sh --jobs 2

test: lint typecheck selfcheck unit

# mltrust's own SBOM (CycloneDX 1.6) from the installed environment, strictly validated.
sbom: $(BIN)/.installed
	$(BIN)/python scripts/self_sbom.py -o mltrust.cdx.json

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/scan_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
