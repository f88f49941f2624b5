# Two entry points for a fresh machine (see README.md):
#   make demo   install into .venv, then run the main job on the bundled sample scan
#   make test   install into .venv (same environment), then run the test suite
#               (everything but the tests marked slow, on two worker processes: a CI
#               machine's two cores; make test-all runs the slow ones too)
#   make lint   ruff's checks and its formatter's check (configured in pyproject.toml);
#               CI runs it before make test
#   make format ruff's fixes and formatter
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all lint format bench clean

# uv resolves and downloads in parallel: the install takes about 12 s where pip takes
# about 60 s. Where uv cannot be had (no network to PyPI, only a local wheel mirror that
# pip is configured for), pip does the same install.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	( $(PY) -m pip install --quiet uv 2>/dev/null \
	  && $(PY) -m uv pip install --quiet --python $(PY) -e '.[test]' ) \
	|| ( $(PY) -m pip install --quiet --upgrade pip \
	  && $(PY) -m pip install --quiet -e '.[test]' )
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/osteoprint demo

test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" -n 2 --dist loadscope --no-loadscope-reorder

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test-all: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder

bench: $(VENV)/.installed
	$(PY) bench/bench_model.py

clean:
	rm -rf $(VENV) outputs/demo .pytest_cache
