# The README's commands. `make install` builds .venv/ from the requirements files and installs
# this project into it (editable: `studio`, `studio-trt`, and `python -m engine` from any folder).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install run replicas demo test test-fast test-gpu bench docs screenshots lint clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-cluster.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-cluster.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The dashboard and the job scheduler, on the workspace ($STUDIO_HOME, default ./workspace).
PORT ?= 8501
run: install
	$(PY) -m engine scheduler & sched=$$!; \
	trap 'kill $$sched 2>/dev/null' EXIT INT TERM; \
	$(PY) -m streamlit run dashboard/app.py --server.port $(PORT)

# More cores for a class: the scheduler, REPLICAS dashboards and Caddy in front of them on PORT
# with session affinity (docker/Caddyfile; apt-get install caddy).
REPLICAS ?= 2
replicas: install
	REPLICAS=$(REPLICAS) PORT=$(PORT) PYTHON=$(PY) sh docker/replicas.sh

# The main job from the CLI alone: offline sample dataset, LeNet, held-out accuracy.
demo: install
	$(PY) -m engine datasets show sample >/dev/null 2>&1 || \
		$(PY) -m engine datasets create sample --source digits-sample
	$(PY) -m engine train --dataset sample --network lenet --epochs 15

# Two pytest-xdist workers on this 2-core machine, a test module at a time each (its
# module-scoped fixtures, e.g. the simulated Ray cluster, start once, on one worker).
# `pytest` alone runs the suite in one process.
XDIST := -n 2 --dist loadfile

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(XDIST)

# The edit loop: no browser, no training beyond a few steps, no job processes (under 2 min).
test-fast: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q $(XDIST) -m "not slow and not browser and not gpu"

test-gpu: install
	$(PY) -m pytest -q -m gpu

# CPU benchmarks; each prints its baseline measured in the same run and the ratio, and writes
# bench/results/*.json. Run them on a quiet machine. GPU ones: bash bench/gpu_check.sh.
bench: install
	$(PY) bench/train_throughput.py
	$(PY) bench/metrics_sink_overhead.py
	$(PY) bench/canvas_latency.py
	$(PY) bench/live_video.py
	$(PY) bench/deploy_cpu.py
	$(PY) bench/serve_load.py

# The docs site (mkdocs.yml, docs/*.md) into site/; strict: a broken link or anchor fails.
docs: install
	$(PY) -m mkdocs build --strict --site-dir site

# Refresh the screenshots (docs/*.png) from the browser tests.
screenshots: install
	STUDIO_UPDATE_DOCS=1 $(PY) -m pytest -q -m browser

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
