# make run    install, then one job on the embedded defaults (offline model, sqlite:///mlflow.db)
# make test   install with the test extras, then the test suite
PYTHON ?= python3

.PHONY: install install-dev run test bench lint ui
install:
	$(PYTHON) -m pip install -q -e .
install-dev:
	$(PYTHON) -m pip install -q -e '.[dev]'
run: install
	$(PYTHON) -m dspy_mlflow
test: install-dev
	$(PYTHON) -m pytest
bench: install-dev
	$(PYTHON) -m pytest -m benchmark tests/benchmarks -s
lint: install-dev
	$(PYTHON) -m ruff check .
ui:
	$(PYTHON) -m dspy_mlflow ui
