# polytask: the two set-up commands of the README's Quickstart.
#   make demo   creates .venv, installs polytask, runs the demo on built-in data
#   make test   creates .venv, installs polytask with test extras, runs the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch is pinned through constraints.txt.  A local wheel folder
# (if the machine has one) is searched before the package index.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := -c constraints.txt $(if $(WHEELS),--find-links $(WHEELS),)
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint venv clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	touch $@

$(VENV)/.installed: $(VENV)/.base pyproject.toml constraints.txt
	$(PIP) install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install $(PIP_FLAGS) -e ".[dev,chem]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/polytask demo

# Two pytest workers on one BLAS/OpenMP thread each: no oversubscription on 2 cores.
test: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs build dist *.egg-info src/*.egg-info
