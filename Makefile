# One entry point for people and CI. `make test` is what .ci/run runs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell bash .ci/find-python)

.PHONY: venv demo test lint unit integration bench clean kind-up kind-down e2e chart control-plane

$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python >= 3.12 not found (see README: Requirements)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]' -e ./sandbox
	touch $@

venv: $(VENV)/.installed

# The whole rollout story on this machine: servers, operator, traffic, fault, rollback,
# retry, 100%. Exits non-zero if the story did not happen (see README: Try it).
demo: venv
	$(PY) -m ingestion_sandbox.demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy hack/helm_chart.py hack/rbac_usage.py hack/gen_crd_defaults.py \
		hack/e2e/traffic.py helm/apex-ingestion-rollout/files/dev_reload.py \
		helm/apex-ingestion-rollout/files/uninstall_rollouts.py
	$(VENV)/bin/lint-imports
	$(PY) hack/gen_crd_defaults.py --check

# The local Kubernetes control plane (kube-apiserver, etcd, controller-manager, scheduler,
# kubectl, helm, kwok), built from the Go module proxy into ~/.cache/apex-ingestion-rollout;
# returns at once when the cache has it (README: Testing against a real control plane).
control-plane:
	bash hack/control-plane/build.sh

test: lint control-plane
	$(VENV)/bin/pytest -ra

unit: venv
	$(VENV)/bin/pytest -ra tests/unit

integration: venv
	$(VENV)/bin/pytest -ra tests/integration

# Every benchmark, one table at the end (bench/api_bench.py runs on its own).
bench: venv
	$(PY) bench/all.py

# A kind cluster with the images built and loaded and the chart installed with the dev values
# (Temporal, Prometheus, Neo4j, MinIO in the cluster). Needs Docker, kind, kubectl and helm.
kind-up:
	hack/kind-up.sh

kind-down:
	hack/kind-down.sh

# The kind end-to-end scenario: rollout, traffic, fault, automatic rollback (its own cluster
# apex-e2e, deleted afterwards unless KEEP_CLUSTER=1). Skips with a message without Docker.
e2e:
	hack/kind-e2e.sh

# Lint the chart with the real helm CLI (the control plane's build), no cluster needed.
chart: venv control-plane
	$(PY) hack/helm_chart.py lint
	$(PY) hack/helm_chart.py lint -f helm/apex-ingestion-rollout/values-dev.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
