# The two commands of the README: `make demo` (set up, run the main job) and `make test`.
# Each creates its own virtual environment in .venv; nothing needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[all,test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/mltrust demo

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# Tests run without network: in a fresh network namespace (only loopback) when the kernel
# allows it, and always behind the socket guard in tests/conftest.py.
unit: $(BIN)/.installed
	bash scripts/no-network.sh $(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/scan_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
